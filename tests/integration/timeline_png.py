#!/usr/bin/env python3
"""Does a screenshot of the --timeline page show four bars overlapping in time?

Reads an 8-bit RGB/RGBA PNG (no imaging library: zlib and the PNG filters), finds the
horizontal bands of the bar colours (a bar that ran, a critical one), keeps the bands wider
than the legend's swatches and checks that at least four of them share a column: four
lanes busy at the same moment. Prints what it found; exit 1 if not.
"""
import struct
import sys
import zlib

COLOURS = [(0x4A, 0x7F, 0xB5), (0xE8, 0x59, 0x0C)]  # timeline.cc: ran, critical
MIN_WIDTH = 50  # px; the legend's swatches are 24


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise SystemExit(f"{path}: unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})")
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def main():
    w, h, bpp, rows = read_png(sys.argv[1])

    def is_bar(row, x):
        r, g, b = row[x * bpp:x * bpp + 3]
        return any(abs(r - cr) <= 6 and abs(g - cg) <= 6 and abs(b - cb) <= 6 for cr, cg, cb in COLOURS)

    mask = [[is_bar(row, x) for x in range(w)] for row in rows]
    bands, start = [], None  # [top, bottom) of runs of rows with bar pixels
    for y in range(h + 1):
        busy = y < h and sum(mask[y]) >= 20
        if busy and start is None:
            start = y
        elif not busy and start is not None:
            bands.append((start, y))
            start = None
    wide = []
    for top, bottom in bands:
        cols = [any(mask[y][x] for y in range(top, bottom)) for x in range(w)]
        runs, x = [], 0
        while x < w:
            if cols[x]:
                x0 = x
                while x < w and cols[x]:
                    x += 1
                runs.append((x0, x))
            else:
                x += 1
        for x0, x1 in runs:
            if x1 - x0 >= MIN_WIDTH:
                wide.append((top, bottom, x0, x1))
    best = max(((sum(1 for _, _, x0, x1 in wide if x0 <= x < x1), x) for x in range(w)), default=(0, 0))
    print(f"{w}x{h}: {len(bands)} bands of bar colour, {len(wide)} bars wider than {MIN_WIDTH}px "
          f"{[(t, x0, x1) for t, _, x0, x1 in wide]}; {best[0]} of them overlap at x={best[1]}")
    return 0 if best[0] >= 4 else 1


if __name__ == "__main__":
    sys.exit(main())
