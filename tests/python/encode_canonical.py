"""securesystemslib's canonical JSON of each document of a corpus.

Usage: encode_canonical.py CORPUS.json

CORPUS.json holds a JSON array of documents. Prints a JSON array with, for each
document, the hex of the UTF-8 bytes of `encode_canonical(document)`, or null when
securesystemslib refuses the document (FormatError: floats).
"""

import json
import sys

from securesystemslib.exceptions import FormatError
from securesystemslib.formats import encode_canonical


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        corpus = json.load(f)
    out = []
    for document in corpus:
        try:
            out.append(encode_canonical(document).encode("utf-8").hex())
        except FormatError:
            out.append(None)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
