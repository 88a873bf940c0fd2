#!/usr/bin/env python3
"""Cross-check strata's tokenizers against independent implementations.

Not part of `meson test` (it needs Debian's python3-sentencepiece and
python3-regex, which CI may lack); run it by hand after changing the
tokenizer:

    tests/tok_crosscheck.py BUILD_DIR [TEXT ...]

For each text (default: the TinyStories text and a random-Unicode text it
makes) it compares, token for token,
  * the Llama-2 SPM vocab with SentencePiece itself (tokenizer.model), and
  * the GPT-2 vocab with OpenAI's encoder.py algorithm (the `regex` module,
    bytes_to_unicode, lowest-rank-pair merges), reading tokens and merges
    from the GGUF file,
using `test_tokenizer --dump GGUF TEXT` for strata's ids.  Exit 0 when all
match, 1 otherwise, 77 when a module or the models are missing.
"""
import os
import random
import struct
import subprocess
import sys
import tempfile

try:
    import regex
    import sentencepiece
except ImportError as e:
    print(f"skip: {e} (apt-get install python3-sentencepiece python3-regex)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.environ.get("ST_MODELS_DIR", os.path.join(HERE, "..", "..", "shared", "models"))
SPM_GGUF = os.path.join(MODELS, "llama2-tokenizer", "ggml-vocab-llama-spm.gguf")
SPM_MODEL = os.path.join(MODELS, "llama2-tokenizer", "tokenizer.model")
GPT2_GGUF = os.path.join(MODELS, "gpt2-tokenizer", "ggml-vocab-gpt-2.gguf")
TINY = os.path.join(MODELS, "tinystories", "tinystories_val.head200k.txt")


def gguf_kv(path):
    data = open(path, "rb").read()
    pos = 4
    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)[0]
        pos += struct.calcsize("<" + fmt)
        return v

    def rs():
        nonlocal pos
        n = rd("Q")
        s = data[pos:pos + n]
        pos += n
        return s

    def val(t):
        if t == 8:
            return rs()
        if t == 9:
            et, n = rd("I"), rd("Q")
            return [val(et) for _ in range(n)]
        return rd(sizes[t])

    rd("I")
    rd("Q")
    kv = {}
    for _ in range(rd("Q")):
        k = rs().decode()
        kv[k] = val(rd("I"))
    return kv


def gpt2_reference(text):
    kv = gguf_kv(GPT2_GGUF)
    enc = {t.decode("utf-8"): i for i, t in enumerate(kv["tokenizer.ggml.tokens"])}
    ranks = {}
    for i, m in enumerate(kv["tokenizer.ggml.merges"]):
        a, b = m.decode("utf-8").split(" ", 1)
        ranks.setdefault((a, b), i)
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    b2u = dict(zip(bs, map(chr, cs)))
    pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    out = []
    for piece in pat.findall(text):
        word = [b2u[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            r, i = min((ranks.get((word[i], word[i + 1]), 1 << 60), i) for i in range(len(word) - 1))
            if r == 1 << 60:
                break
            pair, new, j = (word[i], word[i + 1]), [], 0
            while j < len(word):
                if j < len(word) - 1 and (word[j], word[j + 1]) == pair:
                    new.append(word[j] + word[j + 1])
                    j += 2
                else:
                    new.append(word[j])
                    j += 1
            word = new
        out += [enc[w] for w in word]
    return out


def strata_ids(build, gguf, path):
    exe = os.path.join(build, "tests", "test_tokenizer")
    res = subprocess.run([exe, "--dump", gguf, path], capture_output=True, text=True, check=True)
    return [int(x) for x in res.stdout.split()]


def compare(label, ref, got):
    if ref == got:
        print(f"ok: {label}: {len(got)} tokens identical")
        return True
    i = next((k for k in range(min(len(ref), len(got))) if ref[k] != got[k]), min(len(ref), len(got)))
    print(f"FAIL: {label}: {len(ref)} vs {len(got)} tokens, first difference at {i}: {ref[i:i+8]} vs {got[i:i+8]}")
    return False


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    build = sys.argv[1]
    for f in (SPM_GGUF, SPM_MODEL, GPT2_GGUF):
        if not os.path.exists(f):
            print(f"skip: {f} is missing")
            return 77
    texts = sys.argv[2:]
    tmp = None
    if not texts:
        rnd = random.Random(5)
        pool = [c for c in range(0x20, 0x3000) if not 0xD800 <= c < 0xE000]
        pool += [0x1F600 + i for i in range(80)] + [0x20] * 300 + [0x0A] * 50 + [0x09] * 20
        tmp = tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False)
        tmp.write("".join(chr(rnd.choice(pool)) for _ in range(60000)))
        tmp.close()
        texts = [TINY, tmp.name]
    sp = sentencepiece.SentencePieceProcessor(model_file=SPM_MODEL)
    good = True
    for path in texts:
        text = open(path, encoding="utf-8").read()
        name = os.path.basename(path)
        good &= compare(f"{name}: SPM vs SentencePiece", sp.encode(text), strata_ids(build, SPM_GGUF, path))
        good &= compare(f"{name}: GPT-2 vs encoder.py", gpt2_reference(text), strata_ids(build, GPT2_GGUF, path))
    if tmp:
        os.unlink(tmp.name)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
