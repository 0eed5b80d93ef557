import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCrds } from './crds.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const file of generateCrds()) {
  mkdirSync(dirname(join(root, file.path)), { recursive: true });
  writeFileSync(join(root, file.path), file.content);
  console.log(`wrote ${file.path}`);
}
