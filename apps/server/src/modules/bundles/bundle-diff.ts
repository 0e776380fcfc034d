import { sameCoreFields, sameJson } from '@synk/bundle-rules';
import type { components } from '@synk/contract';

type ChangeLog = components['schemas']['ChangeLog'];
type FieldChange = components['schemas']['FieldChange'];

export interface FormDefinition {
  schema: Record<string, unknown>;
  ui: Record<string, unknown>;
}

// Field names are the form author's: only own properties count (`constructor`, `toString`… are
// inherited by every object and would otherwise look present).
const own = (value: unknown, key: string): unknown =>
  value !== null && typeof value === 'object' && Object.hasOwn(value, key)
    ? (value as Record<string, unknown>)[key]
    : undefined;

function fieldType(definition: unknown): string {
  const type = own(definition, 'type');
  if (Array.isArray(type)) return type.join('|');
  return typeof type === 'string' ? type : '';
}

function properties(schema: Record<string, unknown>): Record<string, unknown> {
  const value = own(schema, 'properties');
  return value && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/**
 * What changed from `target` (older) to `current` (spec §6): forms added and removed, and per
 * modified form whether schema, ui and core fields changed, with top-level property changes (a
 * type change is the field removed with its old type and added with its new one).
 */
export function diffBundles(
  current: { version: string; forms: Map<string, FormDefinition> },
  target: { version: string; forms: Map<string, FormDefinition> },
): ChangeLog {
  const names = (m: Map<string, FormDefinition>) => [...m.keys()].sort();
  const newForms = names(current.forms).filter((f) => !target.forms.has(f));
  const removedForms = names(target.forms).filter((f) => !current.forms.has(f));
  const modified: ChangeLog['modified_forms'] = [];
  for (const form of names(current.forms)) {
    const after = current.forms.get(form)!;
    const before = target.forms.get(form);
    if (!before) continue;
    const schemaChanged = !sameJson(before.schema, after.schema);
    const uiChanged = !sameJson(before.ui, after.ui);
    if (!schemaChanged && !uiChanged) continue;
    const added: FieldChange[] = [];
    const removed: FieldChange[] = [];
    const oldProps = properties(before.schema);
    const newProps = properties(after.schema);
    for (const field of Object.keys(newProps).sort()) {
      if (!Object.hasOwn(oldProps, field)) added.push({ field, type: fieldType(newProps[field]) });
      else if (fieldType(oldProps[field]) !== fieldType(newProps[field])) {
        removed.push({ field, type: fieldType(oldProps[field]) });
        added.push({ field, type: fieldType(newProps[field]) });
      }
    }
    for (const field of Object.keys(oldProps).sort()) {
      if (!Object.hasOwn(newProps, field)) removed.push({ field, type: fieldType(oldProps[field]) });
    }
    modified.push({
      form,
      schema_changed: schemaChanged,
      ui_changed: uiChanged,
      core_changed: !sameCoreFields(before.schema, after.schema),
      added_fields: added.sort((a, b) => a.field.localeCompare(b.field)),
      removed_fields: removed.sort((a, b) => a.field.localeCompare(b.field)),
    });
  }
  return {
    compare_version_a: current.version,
    compare_version_b: target.version,
    form_changes: newForms.length > 0 || removedForms.length > 0 || modified.some((m) => m.schema_changed),
    ui_changes: newForms.length > 0 || removedForms.length > 0 || modified.some((m) => m.ui_changed),
    new_forms: newForms.map((form) => ({ form })),
    removed_forms: removedForms.map((form) => ({ form })),
    modified_forms: modified,
  };
}
