/** The checked-in JSON Schema of a case must be exactly what the zod schema generates today. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { caseJsonSchemaText } from '../../model/schema/json-schema.ts';

const checkedIn = new URL('../../model/schema/case.schema.json', import.meta.url);

describe('model/schema/case.schema.json', () => {
  it('is current with the zod case schema', () => {
    const onDisk = readFileSync(checkedIn, 'utf8');
    const fresh = caseJsonSchemaText();
    // Compare as text: key order and formatting are part of what is checked in.
    expect(onDisk === fresh, 'model/schema/case.schema.json is stale: run `npm run schema` and commit the result').toBe(true);
  });

  it('describes a case: required top-level fields, defaults left optional', () => {
    const schema = JSON.parse(caseJsonSchemaText()) as { type: string; required: string[]; properties: Record<string, unknown> };
    expect(schema.type).toBe('object');
    expect(schema.required.sort()).toEqual(['format', 'name', 'program', 'seed', 'stack']);
    expect(Object.keys(schema.properties)).toContain('meta');
  });
});
