/**
 * The JSON Schema of a case, generated from the zod schema so the two never
 * drift. Pure: `write-json-schema.ts` puts the text on disk and a unit test
 * checks that the checked-in file equals it.
 */
import { z } from 'zod';
import { Case, CASE_FORMAT } from './case.ts';

/** The schema as the text of `case.schema.json` (stable key order, trailing newline). */
export function caseJsonSchemaText(): string {
  // io 'input': the schema describes what people write, so fields with defaults are optional.
  const schema = z.toJSONSchema(Case, { io: 'input', target: 'draft-2020-12' });
  const doc = {
    $schema: schema.$schema,
    title: `blockfarm case (${CASE_FORMAT})`,
    description: 'A block stack, an IO program and a seed. Generated from model/schema/case.ts by `npm run schema`; do not edit.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
