#!/usr/bin/env python3
"""ioring_mkgguf.py: write a llama-shaped GGUF v3 file with random weights of
the exact sizes of a real model, for weight-loading benchmarks (the bytes are
random: the file is for I/O, not for generating text).

  ioring_mkgguf.py tinyllama-q8_0 OUT.gguf   # TinyLlama-1.1B, Q8_0 (~1.17 GB)
  ioring_mkgguf.py llama2-7b-q4_0 OUT.gguf   # Llama-2-7B shape, Q4_0 (~3.8 GB)
"""
import os
import struct
import sys

F32, Q4_0, Q8_0 = 0, 2, 8
BLOCK = {F32: (1, 4), Q4_0: (32, 18), Q8_0: (32, 34)}   # elements, bytes

SHAPES = {
    'tinyllama-q8_0': dict(n_layer=22, dim=2048, ffn=5632, n_head=32, n_kv=4, vocab=32000, wtype=Q8_0),
    'llama2-7b-q4_0': dict(n_layer=32, dim=4096, ffn=11008, n_head=32, n_kv=32, vocab=32000, wtype=Q4_0),
}


def gstr(s):
    b = s.encode()
    return struct.pack('<Q', len(b)) + b


def kv_u32(k, v):
    return gstr(k) + struct.pack('<II', 4, v)


def kv_f32(k, v):
    return gstr(k) + struct.pack('<If', 6, v)


def kv_str(k, v):
    return gstr(k) + struct.pack('<I', 8) + gstr(v)


def tensors(c):
    d, f, hd = c['dim'], c['ffn'], c['dim'] // c['n_head']
    kv = hd * c['n_kv']
    w = c['wtype']
    t = [('token_embd.weight', w, (d, c['vocab']))]
    for l in range(c['n_layer']):
        p = 'blk.%d.' % l
        t += [(p + 'attn_norm.weight', F32, (d,)),
              (p + 'attn_q.weight', w, (d, d)),
              (p + 'attn_k.weight', w, (d, kv)),
              (p + 'attn_v.weight', w, (d, kv)),
              (p + 'attn_output.weight', w, (d, d)),
              (p + 'ffn_norm.weight', F32, (d,)),
              (p + 'ffn_gate.weight', w, (d, f)),
              (p + 'ffn_up.weight', w, (d, f)),
              (p + 'ffn_down.weight', w, (f, d))]
    t += [('output_norm.weight', F32, (d,)), ('output.weight', w, (d, c['vocab']))]
    return t


def nbytes(ty, ne):
    n = 1
    for x in ne:
        n *= x
    be, bb = BLOCK[ty]
    assert n % be == 0
    return n // be * bb


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(__doc__)
    c = SHAPES[sys.argv[1]]
    align = 32
    ts = tensors(c)
    kvs = [kv_str('general.architecture', 'llama'), kv_str('general.name', sys.argv[1] + ' (random)'),
           kv_u32('general.alignment', align),
           kv_u32('llama.block_count', c['n_layer']), kv_u32('llama.embedding_length', c['dim']),
           kv_u32('llama.feed_forward_length', c['ffn']), kv_u32('llama.attention.head_count', c['n_head']),
           kv_u32('llama.attention.head_count_kv', c['n_kv']), kv_u32('llama.context_length', 2048),
           kv_u32('llama.rope.dimension_count', c['dim'] // c['n_head']),
           kv_f32('llama.attention.layer_norm_rms_epsilon', 1e-5)]
    head = b'GGUF' + struct.pack('<IQQ', 3, len(ts), len(kvs)) + b''.join(kvs)
    off = 0
    infos = []
    for name, ty, ne in ts:
        infos.append(gstr(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', x) for x in ne)
                     + struct.pack('<IQ', ty, off))
        off = (off + nbytes(ty, ne) + align - 1) // align * align
    head += b''.join(infos)
    head += b'\0' * ((-len(head)) % align)
    rnd = os.urandom(1 << 24)
    with open(sys.argv[2], 'wb') as fo:
        fo.write(head)
        pos = 0
        for name, ty, ne in ts:
            n = nbytes(ty, ne)
            left = n
            while left:
                k = min(left, len(rnd))
                s = (pos * 7919) % (len(rnd) - k + 1)
                fo.write(rnd[s:s + k])
                left -= k
                pos += 1
            fo.write(b'\0' * ((-n) % align))
    print('%s: %d tensors, %d bytes' % (sys.argv[2], len(ts), os.path.getsize(sys.argv[2])))


if __name__ == '__main__':
    main()
