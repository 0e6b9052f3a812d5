import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

// web/asyncapi.json is `renkei-server asyncapi` (.ci/run regenerates it and fails on any difference): the
// live protocol's document must be a valid AsyncAPI 3.0 document, checked against the specification's own
// JSON Schema (@asyncapi/specs).
const doc = JSON.parse(readFileSync(join(__dirname, '../../asyncapi.json'), 'utf8'));
const spec = JSON.parse(
  readFileSync(join(__dirname, '../../node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json'), 'utf8'),
);

describe('the AsyncAPI document', () => {
  it('is valid AsyncAPI 3.0', () => {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
    addFormats(ajv);
    const validate = ajv.compile(spec);
    const ok = validate(doc);
    expect(validate.errors ?? [], JSON.stringify(validate.errors?.slice(0, 5), null, 1)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('has one message per frame type, both ways', () => {
    const messages = Object.keys(doc.components.messages);
    for (const m of ['client.subscribe', 'client.post', 'client.ping', 'server.post', 'server.ack', 'server.error', 'server.resync']) {
      expect(messages).toContain(m);
    }
    expect(doc.operations.send.action).toBe('send');
    expect(doc.operations.receive.action).toBe('receive');
  });

  it('fails a document that breaks the specification', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    const broken = { ...doc, operations: { send: { action: 'shout', channel: { $ref: '#/channels/live' } } } };
    expect(ajv.compile(spec)(broken)).toBe(false);
  });
});
