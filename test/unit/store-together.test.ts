import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Together } from '../../src/store/together.js';

interface Req {
  id: string;
  keys: string[];
  ops: number;
}

/** A Together whose sends wait until the test lets each go; `sent` records every batch's ids. */
function gathering(budget = 10, fail?: (batch: Req[]) => boolean) {
  const sent: string[][] = [];
  const gates: (() => void)[] = [];
  const together = new Together<Req, string>(
    async (batch) => {
      sent.push(batch.map((r) => r.id));
      await new Promise<void>((r) => gates.push(r));
      if (fail?.(batch)) throw new Error(`batch ${batch.map((r) => r.id).join(',')} failed`);
      return batch.map((r) => `done ${r.id}`);
    },
    { cost: (r) => [r.ops], budget: [budget], keysOf: (r) => r.keys },
  );
  const release = async () => {
    await new Promise((r) => setImmediate(r));
    gates.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { together, sent, release };
}

const req = (id: string, keys: string[] = [id], ops = 1): Req => ({ id, keys, ops });

/** Lets the event loop finish its turn: a batch waits for that before it goes. */
const turn = () => new Promise((r) => setImmediate(r));

describe('Together (group commit)', () => {
  it('sends the requests of one turn of the event loop together, and gathers those asked for meanwhile into the next batch', async () => {
    const { together, sent, release } = gathering();
    const results = [together.submit(req('a')), together.submit(req('b'))];
    assert.deepEqual(sent, [], 'nothing goes before the turn ends');
    await turn();
    assert.deepEqual(sent, [['a', 'b']]);
    results.push(together.submit(req('c')), together.submit(req('d')));
    await release();
    assert.deepEqual(sent, [['a', 'b'], ['c', 'd']]);
    await release();
    assert.deepEqual(await Promise.all(results), ['done a', 'done b', 'done c', 'done d']);
  });

  it('keeps a batch within its budget, taking later requests that fit, the first always', async () => {
    const { together, sent, release } = gathering(5);
    const all = [together.submit(req('first', ['f'], 9))];
    await turn();
    all.push(together.submit(req('big', ['x'], 4)), together.submit(req('also-big', ['y'], 4)), together.submit(req('small', ['z'], 1)));
    for (let i = 0; i < 3; i++) await release();
    await Promise.all(all);
    assert.deepEqual(sent, [['first'], ['big', 'small'], ['also-big']], 'the first goes alone over budget; a request that does not fit waits for the next batch');
  });

  it('never puts two writes of one key in one batch, and keeps their order', async () => {
    const { together, sent, release } = gathering();
    const all = [together.submit(req('open'))];
    await turn();
    all.push(together.submit(req('k1', ['k'])), together.submit(req('k2', ['k', 'j'])), together.submit(req('j-later', ['j'])), together.submit(req('free', ['q'])));
    for (let i = 0; i < 4; i++) await release();
    await Promise.all(all);
    assert.deepEqual(sent, [['open'], ['k1', 'free'], ['k2'], ['j-later']], "k2 waits for k1; j-later, for k2, which writes j too");
  });

  it("rejects every request of a failed batch with its error; the next batch goes on", async () => {
    const { together, release } = gathering(10, (batch) => batch.some((r) => r.id === 'bad'));
    const first = together.submit(req('first'));
    await turn();
    const bad = assert.rejects(together.submit(req('bad')), /batch bad,with-bad failed/);
    const withBad = assert.rejects(together.submit(req('with-bad')), /batch bad,with-bad failed/);
    await release();
    await release();
    assert.equal(await first, 'done first');
    await bad;
    await withBad;
    const after = together.submit(req('after'));
    await release();
    assert.equal(await after, 'done after');
  });
});
