/**
 * Reading small files a user points Lantern at (config.json, tokenizer.json, …) without trusting
 * what the path is: one descriptor, opened non-blocking and checked with fstat before any byte is
 * read, so a FIFO (which would block forever), a device (a link to /dev/zero, read without end) or
 * a folder is a one-line error, and a size bound keeps a huge file from exhausting memory.
 */
import fs from 'node:fs';
import { LanternError } from './errors.js';

/** What a path that is not a regular file is, for errors. */
export function fileKind(st: fs.Stats | fs.BigIntStats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The UTF-8 text of a regular file of at most `maxBytes`; `what` names the file in errors ("tokenizer file"). */
export function readRegularText(path: string, maxBytes: number, what: string): string {
  return readRegularBytes(path, maxBytes, what).toString('utf8');
}

/** The bytes of a regular file of at most `maxBytes`, checked as {@link readRegularText} checks them. */
export function readRegularBytes(path: string, maxBytes: number, what: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LanternError(code === 'ENOENT' ? `${path}: ${what} not found` : `${path}: cannot read (${(e as Error).message.split('\n')[0]})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new LanternError(`${path}: ${what} is not a regular file (${fileKind(st)})`);
    if (st.size > maxBytes) {
      throw new LanternError(`${path}: ${what} is ${(st.size / 2 ** 20).toFixed(0)} MiB, more than the ${maxBytes / 2 ** 20} MiB such a file can sensibly be`);
    }
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = fs.readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } catch (e) {
    if (e instanceof LanternError) throw e;
    throw new LanternError(`${path}: cannot read (${(e as Error).message.split('\n')[0]})`);
  } finally {
    fs.closeSync(fd);
  }
}
