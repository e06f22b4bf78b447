import { describe, expect, it } from 'vitest';
import { CopyBinaryWriter } from './audit-copy.js';

const HEADER = 11 + 4 + 4;

/** The bytes of one row of the given fields, as the writer lays them out. */
function fieldsOf(write: (w: CopyBinaryWriter) => void): Buffer {
  const w = new CopyBinaryWriter(8);
  write(w);
  const data = w.end();
  expect(data.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
  expect(data.readInt16BE(data.length - 2)).toBe(-1);
  return data.subarray(HEADER, data.length - 2);
}

describe('CopyBinaryWriter', () => {
  it('writes text as UTF-8 with its byte length, and null as length -1', () => {
    const bytes = fieldsOf((w) => {
      w.row(2);
      w.text('é\u{1F600}');
      w.textOrNull(null);
    });
    expect(bytes.readInt16BE(0)).toBe(2);
    expect(bytes.readInt32BE(2)).toBe(6);
    expect(bytes.subarray(6, 12).toString('utf8')).toBe('é\u{1F600}');
    expect(bytes.readInt32BE(12)).toBe(-1);
    expect(bytes.length).toBe(16);
  });

  it('writes times as microseconds from 2000-01-01 UTC, before it too', () => {
    const bytes = fieldsOf((w) => {
      w.timestamptz(Date.parse('2000-01-01T00:00:00.001Z'));
      w.timestamptz(Date.parse('1999-12-31T23:59:59.999Z'));
      w.timestamptz(Date.parse('2026-11-28T09:00:00.123Z'));
    });
    expect(bytes.readInt32BE(0)).toBe(8);
    expect(bytes.readBigInt64BE(4)).toBe(1_000n);
    expect(bytes.readBigInt64BE(16)).toBe(-1_000n);
    expect(bytes.readBigInt64BE(28)).toBe(
      BigInt(Date.parse('2026-11-28T09:00:00.123Z') - Date.parse('2000-01-01T00:00:00Z')) * 1_000n,
    );
  });

  it('writes inet as family, bits, cidr flag, size and address bytes', () => {
    const bytes = fieldsOf((w) => {
      w.inet('192.0.2.10');
      w.inet('10.1.0.0/16');
      w.inet('2001:0db8:0000:0000:0000:0000:0000:0007/64');
    });
    expect([...bytes.subarray(0, 12)]).toEqual([0, 0, 0, 8, 2, 32, 0, 4, 192, 0, 2, 10]);
    expect([...bytes.subarray(12, 24)]).toEqual([0, 0, 0, 8, 2, 16, 0, 4, 10, 1, 0, 0]);
    expect([...bytes.subarray(24, 32)]).toEqual([0, 0, 0, 20, 3, 64, 0, 16]);
    expect(bytes.subarray(32, 48).toString('hex')).toBe('20010db8000000000000000000000007');
  });

  it('writes jsonb with its version byte, numbers big-endian, bytea raw, and grows as needed', () => {
    const long = 'x'.repeat(10_000);
    const bytes = fieldsOf((w) => {
      w.jsonb(`{"a":"${long}"}`);
      w.int4(-2);
      w.int8(2n ** 40n);
      w.bytea(Buffer.from([1, 2, 3]));
    });
    const jsonLength = long.length + 8;
    expect(bytes.readInt32BE(0)).toBe(jsonLength + 1);
    expect(bytes[4]).toBe(1);
    expect(bytes.subarray(5, 5 + jsonLength).toString()).toBe(`{"a":"${long}"}`);
    let at = 5 + jsonLength;
    expect([bytes.readInt32BE(at), bytes.readInt32BE(at + 4)]).toEqual([4, -2]);
    at += 8;
    expect([bytes.readInt32BE(at), bytes.readBigInt64BE(at + 4)]).toEqual([8, 2n ** 40n]);
    at += 12;
    expect([...bytes.subarray(at)]).toEqual([0, 0, 0, 3, 1, 2, 3]);
  });
});
