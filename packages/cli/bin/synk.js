#!/usr/bin/env node
// The CLI is written in TypeScript and runs on Node's own type stripping (Node ≥ 22.18 / 24).
import '../src/main.ts';
