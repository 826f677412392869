/**
 * `npm run schema`: writes case.schema.json beside this file from the zod
 * case schema. The one script in model/ that touches the disk; nothing
 * imports it. test/unit/json-schema.test.ts fails when the file is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { caseJsonSchemaText } from './json-schema.ts';

const out = fileURLToPath(new URL('./case.schema.json', import.meta.url));
writeFileSync(out, caseJsonSchemaText());
process.stdout.write(`wrote ${out}\n`);
