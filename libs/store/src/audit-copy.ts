import { finished } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from './pool.js';

// COPY … FROM STDIN (FORMAT binary) for the audit sink's batches: Postgres reads each value
// as it is stored (no text to parse for times, numbers, addresses and hashes, no multi-row
// statement to plan), and the sink writes values straight into one buffer (no array
// literals to escape). See https://www.postgresql.org/docs/current/sql-copy.html.

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Postgres timestamps count microseconds from 2000-01-01 UTC. */
const POSTGRES_EPOCH_MS = 946_684_800_000;
const TWO_TO_32 = 4_294_967_296;
/** inet's address families on the wire (PGSQL_AF_INET, PGSQL_AF_INET6). */
const AF_INET = 2;
const AF_INET6 = 3;

/** Builds the rows of one binary COPY in a growing buffer. */
export class CopyBinaryWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(sizeHint = 1 << 16) {
    this.buf = Buffer.allocUnsafe(Math.max(sizeHint, 64));
    this.pos = SIGNATURE.copy(this.buf, 0);
    this.buf.writeInt32BE(0, this.pos); // flags
    this.buf.writeInt32BE(0, this.pos + 4); // header extension length
    this.pos += 8;
  }

  private room(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  row(fields: number): void {
    this.room(2);
    this.pos = this.buf.writeInt16BE(fields, this.pos);
  }

  null(): void {
    this.room(4);
    this.pos = this.buf.writeInt32BE(-1, this.pos);
  }

  text(value: string): void {
    this.room(4 + value.length * 3);
    const length = this.buf.write(value, this.pos + 4, 'utf8');
    this.buf.writeInt32BE(length, this.pos);
    this.pos += 4 + length;
  }

  textOrNull(value: string | null): void {
    if (value === null) this.null();
    else this.text(value);
  }

  /** jsonb on the wire: a version byte (1), then the JSON text. */
  jsonb(json: string): void {
    this.room(5 + json.length * 3);
    this.buf[this.pos + 4] = 1;
    const length = this.buf.write(json, this.pos + 5, 'utf8');
    this.buf.writeInt32BE(length + 1, this.pos);
    this.pos += 5 + length;
  }

  int4(value: number): void {
    this.room(8);
    this.buf.writeInt32BE(4, this.pos);
    this.pos = this.buf.writeInt32BE(value, this.pos + 4);
  }

  int8(value: bigint): void {
    this.room(12);
    this.buf.writeInt32BE(8, this.pos);
    this.pos = this.buf.writeBigInt64BE(value, this.pos + 4);
  }

  /** A time in epoch milliseconds, as timestamptz. */
  timestamptz(ms: number): void {
    const us = (ms - POSTGRES_EPOCH_MS) * 1000;
    const high = Math.floor(us / TWO_TO_32);
    this.room(12);
    this.buf.writeInt32BE(8, this.pos);
    this.buf.writeInt32BE(high, this.pos + 4);
    this.pos = this.buf.writeUInt32BE(us - high * TWO_TO_32, this.pos + 8);
  }

  bytea(value: Buffer): void {
    this.room(4 + value.length);
    this.buf.writeInt32BE(value.length, this.pos);
    this.pos += 4 + value.copy(this.buf, this.pos + 4);
  }

  /**
   * An address as canonicalIp() spells it (IPv4 dotted, IPv6 as eight 4-digit groups, an
   * optional /bits), as inet; null for null.
   */
  inet(canonical: string | null): void {
    if (canonical === null) return this.null();
    const slash = canonical.indexOf('/');
    const host = slash === -1 ? canonical : canonical.slice(0, slash);
    const v6 = host.includes(':');
    const parts = v6 ? host.split(':') : host.split('.');
    const size = v6 ? 16 : 4;
    const bits = slash === -1 ? size * 8 : Number(canonical.slice(slash + 1));
    this.room(8 + size);
    this.pos = this.buf.writeInt32BE(4 + size, this.pos);
    this.buf[this.pos] = v6 ? AF_INET6 : AF_INET;
    this.buf[this.pos + 1] = bits;
    this.buf[this.pos + 2] = 0; // inet, not cidr
    this.buf[this.pos + 3] = size;
    this.pos += 4;
    for (const part of parts) {
      if (v6) this.pos = this.buf.writeUInt16BE(parseInt(part, 16), this.pos);
      else this.buf[this.pos++] = Number(part);
    }
  }

  /** The finished COPY data (the writer is spent). */
  end(): Buffer {
    this.room(2);
    this.pos = this.buf.writeInt16BE(-1, this.pos);
    return this.buf.subarray(0, this.pos);
  }
}

/** Runs `COPY <target> FROM STDIN (FORMAT binary)` with the data; returns the rows copied. */
export async function copyBinary(client: PoolClient, target: string, data: Buffer): Promise<number> {
  const stream = client.query(copyFrom(`COPY ${target} FROM STDIN (FORMAT binary)`));
  stream.end(data);
  await finished(stream);
  return stream.rowCount;
}
