const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Splits a JSON array of objects, as it arrives in chunks, into its elements, and hands each one
 * to `onElement` as its bytes, to be parsed on its own (or not at all: see dockerode-swarm's tasks). A Swarm list is tens of megabytes of JSON (a task carries its
 * service's whole spec) of which berth keeps a few fields per object: parsing the whole body at
 * once holds all of it, body and object graph, at the same time, long enough to be promoted to
 * the old generation and collected there. One element at a time, each parsed object is projected
 * (see translate.ts) and dropped while still young, and the body is never held as one string.
 */
export class JsonArraySplitter {
  private depth = 0;
  private inString = false;
  /** Backslashes that ended the previous chunk inside a string. */
  private backslashes = 0;
  /** Bytes of the element in progress from earlier chunks. */
  private pending: Buffer[] = [];
  private started = false;
  private ended = false;

  constructor(private readonly onElement: (bytes: Buffer) => void) {}

  push(chunk: Buffer): void {
    // Where the element in progress starts in this chunk: at 0 when it began in an earlier one.
    let start = this.depth >= 2 ? 0 : -1;
    let i = 0;
    while (i < chunk.length) {
      if (this.inString) {
        i = this.skipString(chunk, i);
        continue;
      }
      const c = chunk[i]!;
      if (c === QUOTE) {
        if (this.depth < 2) throw new Error('JSON array: expected objects as elements');
        this.inString = true;
        this.backslashes = 0;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (this.depth === 0) {
          if (c !== OPEN_BRACKET || this.started) throw new Error('JSON array: expected one array');
          this.started = true;
        } else if (this.depth === 1) {
          if (c !== OPEN_BRACE) throw new Error('JSON array: expected objects as elements');
          start = i;
        }
        this.depth++;
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 1) {
          this.emit(chunk.subarray(start, i + 1));
          start = -1;
        } else if (this.depth === 0) this.ended = true;
        else if (this.depth < 0) throw new Error('JSON array: unbalanced');
      }
      i++;
    }
    if (start >= 0) this.pending.push(chunk.subarray(start));
  }

  /**
   * From `from` inside a string, returns where scanning goes on: just past the closing quote, or
   * the end of the chunk. Most of a Docker object's bytes are inside strings, so the quote is found
   * natively (indexOf); a quote closes the string when an even number of backslashes precedes it
   * (`backslashes` carries a run that ended the previous chunk).
   */
  private skipString(chunk: Buffer, from: number): number {
    let q = chunk.indexOf(QUOTE, from);
    while (q >= 0) {
      let run = 0;
      while (q - run - 1 >= from && chunk[q - run - 1] === BACKSLASH) run++;
      if (q - run === from) run += this.backslashes;
      this.backslashes = 0;
      if (run % 2 === 0) {
        this.inString = false;
        return q + 1;
      }
      from = q + 1;
      q = chunk.indexOf(QUOTE, from);
    }
    let run = 0;
    while (chunk.length - run - 1 >= from && chunk[chunk.length - run - 1] === BACKSLASH) run++;
    this.backslashes = chunk.length - run === from ? this.backslashes + run : run;
    return chunk.length;
  }

  /** Throws unless the whole array arrived. */
  end(): void {
    if (!this.ended || this.depth !== 0) throw new Error('JSON array: truncated');
  }

  private emit(tail: Buffer): void {
    const bytes = this.pending.length > 0 ? Buffer.concat([...this.pending, tail]) : tail;
    this.pending = [];
    this.onElement(bytes);
  }
}

/** One element's bytes, parsed. */
export function parseElement(bytes: Buffer): unknown {
  return JSON.parse(bytes.toString('utf8'));
}

/** Reads a stream holding one JSON array of objects; `decode` turns each element's bytes into what is kept. */
export function readJsonArray<T>(stream: NodeJS.ReadableStream, decode: (bytes: Buffer) => T): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    const splitter = new JsonArraySplitter((bytes) => out.push(decode(bytes)));
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      (stream as unknown as { destroy?: () => void }).destroy?.();
      reject(err);
    };
    stream.on('data', (chunk: Buffer | string) => {
      if (failed) return;
      try {
        splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      } catch (err) {
        fail(err);
      }
    });
    stream.on('error', fail);
    stream.on('end', () => {
      if (failed) return;
      try {
        splitter.end();
        resolve(out);
      } catch (err) {
        fail(err);
      }
    });
  });
}
