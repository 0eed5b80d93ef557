import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { JsonArraySplitter, parseElement, readJsonArray } from '../../src/swarm/json-array-stream.js';

const items = [
  { ID: 'a', Spec: { Labels: { 'berth.env': 'x' }, Env: ['A={"b":[1,2]}', 'Q="\\"}]"'] } },
  { ID: 'b', Nested: [[{}], [], { k: [] }], Text: 'é — 漢字 ✓' },
  { Path: 'C:\\dir\\', Quote: '\\"', Many: '\\\\\\' },
  {},
];
const body = Buffer.from(JSON.stringify(items, null, 1));

/** Every split of the body into chunks of `size` bytes (multi-byte characters cut included). */
function chunks(size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) out.push(body.subarray(i, i + size));
  return out;
}

test('json array splitter: each element parsed on its own, whatever the chunk boundaries', async () => {
  for (const size of [1, 2, 3, 7, 64, body.length]) {
    const got = await readJsonArray(Readable.from(chunks(size)), parseElement);
    assert.deepEqual(got, items, `chunks of ${size} bytes`);
  }
});

test('json array splitter: an empty array, and elements handed out as soon as they are complete', () => {
  const seen: unknown[] = [];
  const s = new JsonArraySplitter((x) => seen.push(parseElement(x)));
  s.push(Buffer.from('[{"a":1},'));
  assert.deepEqual(seen, [{ a: 1 }]);
  s.push(Buffer.from('{"b":"}"}]'));
  s.end();
  assert.deepEqual(seen, [{ a: 1 }, { b: '}' }]);
  const empty = new JsonArraySplitter(() => assert.fail('no element'));
  empty.push(Buffer.from(' [ ] '));
  empty.end();
});

test('json array splitter: a truncated body or one that is not an array of objects is refused', async () => {
  await assert.rejects(readJsonArray(Readable.from([body.subarray(0, body.length - 3)]), parseElement), /truncated/);
  await assert.rejects(readJsonArray(Readable.from([Buffer.from('{"message":"no"}')]), parseElement), /one array/);
  await assert.rejects(readJsonArray(Readable.from([Buffer.from('["a"]')]), parseElement), /objects/);
  await assert.rejects(readJsonArray(Readable.from([Buffer.from('[{"a":1}}]')]), parseElement));
});
