"""Fixed numbers of LeNet-5, transcribed from LeCun, Bottou, Bengio & Haffner (1998).

Everything here is drawn as text so it can be checked by eye against the paper:
Table I (the C3 connection table) and Fig. 3 (the 7x12 RBF bitmaps of the digits).
"""
import numpy as np

# Squashing function f(a) = A * tanh(S * a)  (Eq. 5-6, Appendix A).
SQUASH_A = 1.7159
SQUASH_S = 2.0 / 3.0

# Input normalisation (Sec. II-B): background -0.1, ink 1.175, linear in between.
INPUT_BACKGROUND = -0.1
INPUT_FOREGROUND = 1.175

# Table I: rows are S2 maps 0-5, columns are C3 maps 0-15; X = the C3 map takes that S2 map.
_C3_TABLE_TEXT = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""

# Fig. 3: the stylised digits 0-9, 12 rows x 7 columns, '#' = +1, '.' = -1.
_RBF_BITMAPS_TEXT = """
.#####.   ...##..   .#####.   #######   .#####.   .#####.   ..####.   #######   .#####.   .#####.
.......   ..###..   .......   .....##   .......   .......   .##....   .....##   ##...##   ##..###
..###..   .####..   .#####.   ....##.   .......   #######   ##.....   .....##   ##...##   ##...##
.##.##.   ...##..   ##...##   ...##..   .##..##   ##.....   ##.....   ....##.   ##...##   ##...##
##...##   ...##..   #....##   ..####.   .##..##   ##.....   ######.   ...##..   .#####.   ##..###
##...##   ...##..   ....##.   .....##   ###..##   .####..   ###..##   ...##..   ##...##   .######
##...##   ...##..   ..###..   .....##   ##...##   ..####.   ##...##   ..##...   ##...##   .....##
##...##   ...##..   .##....   .....##   ##...##   .....##   ##...##   ..##...   ##...##   .....##
.##.##.   ...##..   ##.....   ##...##   ##..###   ##...##   ###..##   ..##...   ##...##   ....##.
..###..   .######   #######   .#####.   .######   .#####.   .#####.   ..##...   .#####.   .####..
.......   .......   .......   .......   .....##   .......   .......   .......   .......   .......
.......   .......   .......   .......   .....##   .......   .......   .......   .......   .......
"""


def _parse_c3_table(text):
    rows = text.split()
    return np.array([[ch == "X" for ch in row] for row in rows], dtype=np.uint8)


def _parse_rbf_bitmaps(text):
    rows = [line.split() for line in text.strip().splitlines()]   # 12 rows x 10 digits
    digits = [[row[d] for row in rows] for d in range(10)]
    return np.array([[1.0 if ch == "#" else -1.0 for ch in "".join(bitmap)] for bitmap in digits])


#: (6, 16) uint8: C3_TABLE[s2_map, c3_map] == 1 where the C3 map reads the S2 map.
C3_TABLE = _parse_c3_table(_C3_TABLE_TEXT)
C3_TABLE.setflags(write=False)

#: (10, 84) float64 of +-1: row d is digit d's 12x7 bitmap flattened row-major.
RBF_CENTERS = _parse_rbf_bitmaps(_RBF_BITMAPS_TEXT)
RBF_CENTERS.setflags(write=False)
