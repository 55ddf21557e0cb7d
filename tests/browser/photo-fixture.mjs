// A phone's photo for the tests, made here: a JPEG of 3000 × 2000 pixels (its left
// half red, its right half blue) with an EXIF block that says to turn it a quarter
// to the right (Orientation 6, as a phone held upright writes) and where it was
// taken (a GPS position). Usable as a module (`photo(page)`) or from the command
// line: `node photo-fixture.mjs out.jpg` (needs LANCHAT_BIN's Chromium, see
// harness.mjs).
import { writeFileSync } from 'node:fs';

/** The JPEG's bytes, encoded by the browser in `page`, with the EXIF block added. */
export async function photo(page) {
  const jpeg = Buffer.from(await page.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 3000;
    canvas.height = 2000;
    const g = canvas.getContext('2d');
    g.fillStyle = '#ff0000';
    g.fillRect(0, 0, 1500, 2000);
    g.fillStyle = '#0000ff';
    g.fillRect(1500, 0, 1500, 2000);
    const blob = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.9));
    return [...new Uint8Array(await blob.arrayBuffer())];
  }));
  // Right after the start-of-image marker, before the encoder's own segments.
  return Buffer.concat([jpeg.subarray(0, 2), exif(), jpeg.subarray(2)]);
}

/**
 * A photo as a phone's camera makes it: 4000 × 3000 (12 MP), gradients, shapes and
 * sensor-like noise, JPEG at 0.92, about 4 MB.
 */
export async function camera(page) {
  return Buffer.from(await page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 4000;
    c.height = 3000;
    const g = c.getContext('2d');
    const sky = g.createLinearGradient(0, 0, 4000, 3000);
    sky.addColorStop(0, '#3a6ea5');
    sky.addColorStop(0.5, '#e8d8b0');
    sky.addColorStop(1, '#2f4f2f');
    g.fillStyle = sky;
    g.fillRect(0, 0, 4000, 3000);
    for (let i = 0; i < 400; i++) {
      g.fillStyle = `hsl(${(i * 37) % 360} 50% ${30 + (i % 40)}%)`;
      g.beginPath();
      g.arc((i * 997) % 4000, (i * 613) % 3000, 20 + (i % 150), 0, 7);
      g.fill();
    }
    // Sensor-like noise: a tile of it, made pixel by pixel, laid over the scene as a
    // pattern (pixel by pixel over 12 MP took half a minute).
    const tile = document.createElement('canvas');
    tile.width = tile.height = 509;
    const t = tile.getContext('2d');
    const noise = t.createImageData(509, 509);
    let seed = 1;
    for (let i = 0; i < noise.data.length; i += 4) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      noise.data[i] = noise.data[i + 1] = noise.data[i + 2] = seed % 256;
      noise.data[i + 3] = 255;
    }
    t.putImageData(noise, 0, 0);
    g.globalAlpha = 0.16;
    g.fillStyle = g.createPattern(tile, 'repeat');
    g.fillRect(0, 0, 4000, 3000);
    g.globalAlpha = 1;
    const blob = await new Promise((r) => c.toBlob(r, 'image/jpeg', 0.92));
    // As base64: an array of four million numbers is slow to hand back.
    const url = await new Promise((r) => { const f = new FileReader(); f.onload = () => r(f.result); f.readAsDataURL(blob); });
    return url.slice(url.indexOf(',') + 1);
  }), 'base64');
}

/** An APP1 segment: TIFF, big-endian; IFD0 with Orientation and a GPS pointer; the GPS IFD. */
export function exif() {
  const tiff = [];
  const u16 = (n) => tiff.push((n >> 8) & 255, n & 255);
  const u32 = (n) => { u16((n >>> 16) & 0xffff); u16(n & 0xffff); };
  const entry = (tag, type, count, value) => { u16(tag); u16(type); u32(count); u32(value); };
  tiff.push(0x4d, 0x4d); u16(42); u32(8); // "MM", 42, IFD0 at 8
  // IFD0: 2 entries (8 + 2 + 24 + 4 = 38).
  u16(2);
  entry(0x0112, 3, 1, 6 << 16); // Orientation = 6, a SHORT left-aligned in the value
  entry(0x8825, 4, 1, 38); // GPSInfo IFD at 38
  u32(0);
  // GPS IFD at 38: 4 entries (38 + 2 + 48 + 4 = 92), then the rationals at 92 and 116.
  u16(4);
  entry(0x0001, 2, 2, 0x4e000000); // GPSLatitudeRef "N"
  entry(0x0002, 5, 3, 92); // GPSLatitude
  entry(0x0003, 2, 2, 0x45000000); // GPSLongitudeRef "E"
  entry(0x0004, 5, 3, 116); // GPSLongitude
  u32(0);
  for (const [n, d] of [[52, 1], [31, 1], [1234, 100], [13, 1], [24, 1], [5678, 100]]) { u32(n); u32(d); }
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), Buffer.from(tiff)]);
  const head = Buffer.from([0xff, 0xe1, (body.length + 2) >> 8, (body.length + 2) & 255]);
  return Buffer.concat([head, body]);
}

if (process.argv[1]?.endsWith('photo-fixture.mjs') && process.argv[2]) {
  const { launch } = await import('./harness.mjs');
  const browser = await launch();
  const page = await browser.newPage();
  writeFileSync(process.argv[2], await photo(page));
  await browser.close();
  console.log(`wrote ${process.argv[2]}`);
}
