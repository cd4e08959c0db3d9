#!/usr/bin/env python3
"""Fixtures of the data layer (tests/fixtures/data/), made with Pillow and numpy.

Images of one known pattern, 32x24 (w x h), pixel (x, y):
    R = 8x, G = 10y, B = 4x + 5y            (smooth, so JPEG stays close)
  fmt_baseline.jpg     RGB JPEG, quality 95, baseline
  fmt_progressive.jpg  RGB JPEG, quality 95, progressive
  fmt_rgb16.png        16-bit RGB PNG, each channel v*257 (decodes to v exactly)
  fmt_grey.png         8-bit greyscale PNG of G (decodes to (G, G, G))
  fmt_grey16.png       16-bit greyscale PNG of G*257
  fmt_rgba.png         RGBA PNG, alpha = 255 - 7x (RGB kept, alpha dropped)
  fmt_rgb.bmp          24-bit BMP
  truncated.jpg        a 96x96 noise JPEG cut to half its bytes
  truncated.png        a 32x24 noise PNG cut to half its bytes
  not_an_image.png     text

Resize reference (PIL Image.resize with BILINEAR, which antialiases when shrinking):
  resize_ref.bin  little-endian: int32 count; then per case int32 w, h, ow, oh,
                  then w*h*3 uint8 input (row-major RGB) and ow*oh*3 uint8 output.
                  Cases: 40x30 seeded noise -> 17x13, -> 61x47, -> 40x20;
                  smooth 48x36 pattern -> 20x15, -> 100x75.
Run: python3 tools/reference/data_fixtures.py  (writes into tests/fixtures/data/)
"""
import io
import os
import struct

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), '..', '..', 'tests', 'fixtures', 'data')


def pattern(w, h):
    x = np.arange(w)[None, :].repeat(h, 0)
    y = np.arange(h)[:, None].repeat(w, 1)
    return np.stack([8 * x, 10 * y, 4 * x + 5 * y], -1).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    p = pattern(32, 24)
    img = Image.fromarray(p, 'RGB')
    img.save(os.path.join(OUT, 'fmt_baseline.jpg'), quality=95, subsampling=0)
    img.save(os.path.join(OUT, 'fmt_progressive.jpg'), quality=95, subsampling=0, progressive=True)
    img.save(os.path.join(OUT, 'fmt_rgb.bmp'))
    # 16-bit RGB PNG: Pillow cannot write it; build the file by hand (zlib + chunks)
    import zlib
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    def png16(arr, colortype):
        h, w = arr.shape[:2]
        raw = b''.join(b'\x00' + arr[r].astype('>u2').tobytes() for r in range(h))
        return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, colortype, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))
    with open(os.path.join(OUT, 'fmt_rgb16.png'), 'wb') as f:
        f.write(png16(p.astype(np.uint16) * 257, 2))
    with open(os.path.join(OUT, 'fmt_grey16.png'), 'wb') as f:
        f.write(png16(p[:, :, 1].astype(np.uint16) * 257, 0))
    Image.fromarray(p[:, :, 1], 'L').save(os.path.join(OUT, 'fmt_grey.png'))
    alpha = (255 - 7 * np.arange(32)[None, :].repeat(24, 0)).astype(np.uint8)
    Image.fromarray(np.dstack([p, alpha]), 'RGBA').save(os.path.join(OUT, 'fmt_rgba.png'))

    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    b = io.BytesIO(); Image.fromarray(noise).save(b, 'JPEG', quality=50)
    data = b.getvalue()
    with open(os.path.join(OUT, 'truncated.jpg'), 'wb') as f:
        f.write(data[:len(data) // 2])
    b = io.BytesIO(); Image.fromarray(noise[:24, :32]).save(b, 'PNG')
    data = b.getvalue()
    with open(os.path.join(OUT, 'truncated.png'), 'wb') as f:
        f.write(data[:len(data) // 2])
    with open(os.path.join(OUT, 'not_an_image.png'), 'w') as f:
        f.write('this is not an image\n')

    cases = []
    src = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for ow, oh in [(17, 13), (61, 47), (40, 20)]:
        cases.append((src, ow, oh))
    smooth = pattern(48, 36)
    for ow, oh in [(20, 15), (100, 75)]:
        cases.append((smooth, ow, oh))
    with open(os.path.join(OUT, 'resize_ref.bin'), 'wb') as f:
        f.write(struct.pack('<i', len(cases)))
        for a, ow, oh in cases:
            h, w = a.shape[:2]
            out = np.asarray(Image.fromarray(a).resize((ow, oh), Image.BILINEAR))
            f.write(struct.pack('<4i', w, h, ow, oh))
            f.write(a.tobytes())
            f.write(out.tobytes())


if __name__ == '__main__':
    main()
