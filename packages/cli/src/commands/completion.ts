import type { Command } from 'commander';

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description(
      'print a bash completion script: eval "$(synk completion)" (zsh: autoload bashcompinit first)',
    )
    .action(() => {
      const top = program.commands.map((c) => c.name());
      const cases = program.commands
        .filter((c) => c.commands.length > 0)
        .map((c) => `    ${c.name()}) words="${c.commands.map((s) => s.name()).join(' ')}" ;;`)
        .join('\n');
      process.stdout.write(`_synk() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" words
  case "$prev" in
${cases}
    *) words="${top.join(' ')} --server --profile --json --help" ;;
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _synk synk
`);
    });
}
