#!/usr/bin/python3
"""ref_llama.py: an independent numpy llama forward pass (float64), written
from the maths, with its own GGUF parser.  It shares no code with strata.

usage: ref_llama.py MODEL.gguf OUT.f64 TOKENS
  TOKENS: comma-separated token ids, evaluated from position 0.
  Writes the logits of every position as little-endian float64
  [n_tokens][n_vocab] to OUT.f64.  Only F32 tensors (stories260K)."""
import struct
import sys

import numpy as np


def read_gguf(path):
    data = open(path, 'rb').read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from('<' + fmt, data, pos)
        pos += struct.calcsize('<' + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take('Q')
        s = data[pos:pos + n].decode('utf-8', 'replace')
        pos += n
        return s

    scalar = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}

    def value(t):
        if t in scalar:
            return take(scalar[t])
        if t == 8:
            return string()
        if t == 9:
            et, n = take('I'), take('Q')
            return [value(et) for _ in range(n)]
        raise ValueError('bad GGUF value type %d' % t)

    if data[:4] != b'GGUF':
        raise ValueError('not a GGUF file')
    pos = 4
    version, n_tensors, n_kv = take('I'), take('Q'), take('Q')
    if version not in (2, 3):
        raise ValueError('GGUF version %d' % version)
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take('I'))
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take('I')
        ne = [take('Q') for _ in range(nd)]
        typ, off = take('I'), take('Q')
        infos.append((name, ne, typ, off))
    align = kv.get('general.alignment', 32)
    base = (pos + align - 1) // align * align
    tensors = {}
    for name, ne, typ, off in infos:
        if typ != 0:
            raise ValueError('tensor %s has type %d; this reference reads F32 only' % (name, typ))
        count = int(np.prod(ne))
        a = np.frombuffer(data, dtype='<f4', count=count, offset=base + off).astype(np.float64)
        # ggml ne = [in, out]: row-major [out][in]
        tensors[name] = a.reshape(list(reversed(ne))) if len(ne) > 1 else a
    return kv, tensors


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x) + eps) * w


def rope(v, n_head, hd, rope_dim, theta, pos):
    v = v.reshape(n_head, hd).copy()
    i = np.arange(rope_dim // 2)
    ang = pos * theta ** (-2.0 * i / rope_dim)
    c, s = np.cos(ang), np.sin(ang)
    x0, x1 = v[:, 0:rope_dim:2].copy(), v[:, 1:rope_dim:2].copy()
    v[:, 0:rope_dim:2] = x0 * c - x1 * s
    v[:, 1:rope_dim:2] = x0 * s + x1 * c
    return v.reshape(-1)


def forward(kv, T, tokens):
    assert kv['general.architecture'] == 'llama'
    dim = kv['llama.embedding_length']
    n_layer = kv['llama.block_count']
    n_head = kv['llama.attention.head_count']
    n_kv = kv.get('llama.attention.head_count_kv', n_head)
    hd = dim // n_head
    rope_dim = kv.get('llama.rope.dimension_count', hd)
    eps = kv.get('llama.attention.layer_norm_rms_epsilon', 1e-5)
    theta = kv.get('llama.rope.freq_base', 10000.0)
    group = n_head // n_kv
    out_w = T.get('output.weight', T['token_embd.weight'])
    kcache = [[] for _ in range(n_layer)]
    vcache = [[] for _ in range(n_layer)]
    logits = []
    for pos, tok in enumerate(tokens):
        x = T['token_embd.weight'][tok].copy()
        for l in range(n_layer):
            p = 'blk.%d.' % l
            xb = rmsnorm(x, T[p + 'attn_norm.weight'], eps)
            q = rope(T[p + 'attn_q.weight'] @ xb, n_head, hd, rope_dim, theta, pos)
            k = rope(T[p + 'attn_k.weight'] @ xb, n_kv, hd, rope_dim, theta, pos)
            v = T[p + 'attn_v.weight'] @ xb
            kcache[l].append(k.reshape(n_kv, hd))
            vcache[l].append(v.reshape(n_kv, hd))
            K = np.stack(kcache[l])      # [pos+1][n_kv][hd]
            V = np.stack(vcache[l])
            out = np.zeros((n_head, hd))
            for h in range(n_head):
                qh = q.reshape(n_head, hd)[h]
                s = K[:, h // group, :] @ qh / np.sqrt(hd)
                a = np.exp(s - s.max())
                a /= a.sum()
                out[h] = a @ V[:, h // group, :]
            x = x + T[p + 'attn_output.weight'] @ out.reshape(-1)
            xb = rmsnorm(x, T[p + 'ffn_norm.weight'], eps)
            g = T[p + 'ffn_gate.weight'] @ xb
            u = T[p + 'ffn_up.weight'] @ xb
            x = x + T[p + 'ffn_down.weight'] @ (g / (1.0 + np.exp(-g)) * u)
        logits.append(out_w @ rmsnorm(x, T['output_norm.weight'], eps))
    return np.array(logits)


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    kv, T = read_gguf(sys.argv[1])
    tokens = [int(t) for t in sys.argv[3].split(',')]
    logits = forward(kv, T, tokens)
    logits.astype('<f8').tofile(sys.argv[2])
    return 0


if __name__ == '__main__':
    sys.exit(main())
