#!/usr/bin/env python3
"""Writes a model folder in the layout of Hugging Face's GPT-2 with random weights, for the analyze
benchmark (scripts/bench: GPT-2 small, 124M parameters) and its shortened test (AnalyzeTests).

The tensors are those of `GPT2Model`'s state dict under HF's names: wte.weight (vocab × C), wpe.weight
(block × C), and per layer h.<i>.ln_1.{weight,bias}, h.<i>.attn.bias (the 1×1×block×block causal mask
buffer), h.<i>.attn.c_attn.{weight (C × 3C, Conv1D layout), bias}, h.<i>.attn.c_proj.{weight, bias},
h.<i>.ln_2.*, h.<i>.mlp.c_fc.{weight (C × 4C), bias}, h.<i>.mlp.c_proj.{weight (4C × C), bias};
ln_f.{weight, bias}. Weights are N(0, 0.02²), written as BF16 (truncated float32, as numpy has no
bfloat16) or F32, split into shards model-0000k-of-0000n.safetensors with model.safetensors.index.json,
plus a config.json. Only numpy is needed.

usage: gpt2_layout_model.py DIR [--n_embd 768] [--n_layer 12] [--vocab 50257] [--block 1024]
                            [--shards 3] [--dtype BF16|F32] [--seed 1]
"""
import argparse, json, os, struct
import numpy as np


def tensors(C, L, V, T):
    shapes = {'wte.weight': (V, C), 'wpe.weight': (T, C)}
    for i in range(L):
        p = f'h.{i}.'
        shapes.update({p + 'ln_1.weight': (C,), p + 'ln_1.bias': (C,), p + 'attn.bias': (1, 1, T, T),
                       p + 'attn.c_attn.weight': (C, 3 * C), p + 'attn.c_attn.bias': (3 * C,),
                       p + 'attn.c_proj.weight': (C, C), p + 'attn.c_proj.bias': (C,),
                       p + 'ln_2.weight': (C,), p + 'ln_2.bias': (C,),
                       p + 'mlp.c_fc.weight': (C, 4 * C), p + 'mlp.c_fc.bias': (4 * C,),
                       p + 'mlp.c_proj.weight': (4 * C, C), p + 'mlp.c_proj.bias': (C,)})
    shapes.update({'ln_f.weight': (C,), 'ln_f.bias': (C,)})
    return shapes


def values(name, shape, rng):
    if name.endswith('.attn.bias'):
        return np.tril(np.ones(shape, np.float32))      # the causal mask buffer
    if name.endswith('ln_1.weight') or name.endswith('ln_2.weight') or name == 'ln_f.weight':
        return np.ones(shape, np.float32)
    if name.endswith('.bias'):
        return np.zeros(shape, np.float32)
    return 0.02 * rng.standard_normal(shape, dtype=np.float32)


def write_shard(path, items, dtype):
    header, offset = {}, 0
    for name, x in items:
        n = x.size * (2 if dtype == 'BF16' else 4)
        header[name] = {'dtype': dtype, 'shape': list(x.shape), 'data_offsets': [offset, offset + n]}
        offset += n
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for _, x in items:
            # BF16: the upper 16 bits of each float32 (truncation; numpy has no bfloat16 type)
            f.write((x.view(np.uint32) >> 16).astype('<u2').tobytes() if dtype == 'BF16' else x.astype('<f4').tobytes())
    return offset


def main():
    a = argparse.ArgumentParser()
    a.add_argument('dir')
    a.add_argument('--n_embd', type=int, default=768)
    a.add_argument('--n_layer', type=int, default=12)
    a.add_argument('--vocab', type=int, default=50257)
    a.add_argument('--block', type=int, default=1024)
    a.add_argument('--shards', type=int, default=3)
    a.add_argument('--dtype', choices=['BF16', 'F32'], default='BF16')
    a.add_argument('--seed', type=int, default=1)
    o = a.parse_args()
    os.makedirs(o.dir, exist_ok=True)
    rng = np.random.default_rng(o.seed)
    shapes = tensors(o.n_embd, o.n_layer, o.vocab, o.block)
    names = list(shapes)
    weight_map, total = {}, 0
    for k, part in enumerate(np.array_split(np.arange(len(names)), o.shards)):
        shard = f'model-{k + 1:05d}-of-{o.shards:05d}.safetensors'
        items = [(names[j], values(names[j], shapes[names[j]], rng)) for j in part]
        total += write_shard(os.path.join(o.dir, shard), items, o.dtype)
        weight_map.update({n: shard for n, _ in items})
    with open(os.path.join(o.dir, 'model.safetensors.index.json'), 'w') as f:
        json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f, indent=2)
    with open(os.path.join(o.dir, 'config.json'), 'w') as f:
        json.dump({'model_type': 'gpt2', 'n_embd': o.n_embd, 'n_layer': o.n_layer, 'n_head': max(1, o.n_embd // 64),
                   'vocab_size': o.vocab, 'n_positions': o.block}, f, indent=2)
    params = sum(int(np.prod(s)) for n, s in shapes.items() if not n.endswith('.attn.bias'))
    matrices = sum(1 for s in shapes.values() if len(s) == 2)
    print(f'OK {len(names)} tensors, {matrices} matrices, {params} parameters, {total} bytes')


if __name__ == '__main__':
    main()
