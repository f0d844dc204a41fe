/**
 * Reading a shard file of JSON lines without holding it as one string (a shard can be larger than
 * the longest string). Written here because node:readline only reads asynchronously, and the
 * dashboards merge folds its parts in a synchronous generator, a feature line at a time.
 */
import fs from 'node:fs';

/** The non-empty lines of `file`, read `chunkBytes` at a time; the file stays open until the loop ends. */
export function* readLines(file: string, chunkBytes = 1 << 22): Generator<string> {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(chunkBytes);
    let pending: Buffer[] = [];
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      let start = 0;
      for (let i; (i = buf.subarray(0, n).indexOf(10, start)) >= 0; start = i + 1) {
        const line = Buffer.concat([...pending, buf.subarray(start, i)]).toString('utf8');
        pending = [];
        if (line) yield line;
      }
      // The buffer is reused: keep a copy of the unfinished line.
      pending.push(Buffer.from(buf.subarray(start, n)));
    }
    const last = Buffer.concat(pending).toString('utf8');
    if (last) yield last;
  } finally {
    fs.closeSync(fd);
  }
}
