#!/usr/bin/python3
"""PyTorch-CPU peer for optbench's BERT `workstation` preset.

Trains the same network as workloads/bert/bert_model.c (post-LN BERT with the
masked-LM head tied to the word embeddings and the next-sentence head) on
synthetic full-length sequences, and prints the training throughput, so
optbench's tokens/s can be compared with PyTorch measured in the same run on
the same machine (DESIGN.md section 9). Only the time per step matters: ids
and labels are random.

Run with Debian's python (python3-torch):
  /usr/bin/python3 this.py --threads 2 --expect-params N
The last line is machine-readable:
  torch_tokens_per_s=<f> steps=<n> batch=<b> seq=<s> threads=<t> median_step_s=<f>
  median_cpu_s=<f> peak_rss_mib=<f> torch=<v>
(median_cpu_s: the process's CPU seconds per step, all threads; peak_rss_mib:
its peak resident memory)
"""
import argparse
import math
import resource
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_bench_common import setup_torch, time_training_steps

LN_EPS = 1e-12  # bert_model.c's BERT_LN_EPS
SPECIAL_TOKENS = 5  # synthetic ids start after [PAD] [UNK] [CLS] [SEP] [MASK]


def gelu(x):
    return F.gelu(x)  # the erf form (approximate="none"), as optbench's


class EncoderLayer(nn.Module):
    """a = LN(h + drop(W_o attention(h))); h = LN(a + drop(W_2 gelu(W_1 a)))."""

    def __init__(self, hidden, heads, ffn, dropout):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=LN_EPS)
        self.ffn_in = nn.Linear(hidden, ffn)
        self.ffn_out = nn.Linear(ffn, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=LN_EPS)
        self.dropout = nn.Dropout(dropout)

    def split_heads(self, x):
        batch, seq, hidden = x.shape
        return x.view(batch, seq, self.heads, hidden // self.heads).transpose(1, 2)

    def forward(self, h, additive_mask):
        q, k, v = self.split_heads(self.query(h)), self.split_heads(self.key(h)), self.split_heads(self.value(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + additive_mask
        probs = self.dropout(F.softmax(scores, dim=-1))
        context = (probs @ v).transpose(1, 2).reshape(h.shape)
        a = self.attention_norm(h + self.dropout(self.attention_out(context)))
        return self.ffn_norm(a + self.dropout(self.ffn_out(gelu(self.ffn_in(a)))))


class BertForPretraining(nn.Module):
    def __init__(self, layers, hidden, heads, ffn, vocab, max_positions, type_vocab, dropout):
        super().__init__()
        self.words = nn.Embedding(vocab, hidden)
        self.positions = nn.Embedding(max_positions, hidden)
        self.token_types = nn.Embedding(type_vocab, hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=LN_EPS)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn, dropout) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)
        self.transform = nn.Linear(hidden, hidden)
        self.transform_norm = nn.LayerNorm(hidden, eps=LN_EPS)
        self.decoder_bias = nn.Parameter(torch.zeros(vocab))  # decoder weight: self.words, tied
        self.nsp_classifier = nn.Linear(hidden, 2)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)

    def forward(self, input_ids, segment_ids, input_mask, masked_positions):
        batch, seq = input_ids.shape
        position_ids = torch.arange(seq).expand(batch, seq)
        h = self.words(input_ids) + self.positions(position_ids) + self.token_types(segment_ids)
        h = self.dropout(self.embedding_norm(h))
        # 0 for a real key, -10000 for padding (all real here), broadcast over heads and queries
        additive_mask = (1.0 - input_mask[:, None, None, :].float()) * -10000.0
        for layer in self.layers:
            h = layer(h, additive_mask)
        # masked LM over the masked rows only, as optbench's masked_lm_logits
        rows = torch.arange(batch)[:, None] * seq + masked_positions
        selected = h.reshape(batch * seq, -1)[rows.reshape(-1)]
        transformed = self.transform_norm(gelu(self.transform(selected)))
        mlm_logits = transformed @ self.words.weight.t() + self.decoder_bias
        nsp_logits = self.nsp_classifier(torch.tanh(self.pooler(h[:, 0])))
        return mlm_logits, nsp_logits


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--max-pred", type=int, default=20, help="masked positions per sequence")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--max-positions", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--expect-params", type=int, default=0,
                    help="optbench's parameter count for this config; exit 1 when the model differs")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if min(args.threads, args.batch, args.steps, args.max_pred) < 1 or args.warmup < 0:
        sys.exit("torch_bert_workstation: --threads, --batch, --steps, --max-pred must be >= 1, --warmup >= 0")
    if 1 + 6 * (args.max_pred - 1) >= args.seq:
        sys.exit("torch_bert_workstation: --max-pred positions (every sixth from 1) do not fit in --seq")
    return args


def adamw_for(model):
    """AdamW as optbench's: weight decay on weights and embeddings, not on biases and LayerNorm."""
    decayed = [p for name, p in model.named_parameters() if p.dim() == 2]
    plain = [p for name, p in model.named_parameters() if p.dim() != 2]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}],
                             lr=5e-4, betas=(0.9, 0.999), eps=1e-8)


def main():
    args = parse_args()
    setup_torch(args.threads, args.seed)

    model = BertForPretraining(args.layers, args.hidden, args.heads, args.ffn, args.vocab, args.max_positions,
                               2, args.dropout).train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params={n_params}")
    if args.expect_params and n_params != args.expect_params:
        sys.exit(f"torch_bert_workstation: model has {n_params} parameters, optbench's has "
                 f"{args.expect_params}: not the same architecture")
    opt = adamw_for(model)

    # One fixed synthetic batch as optbench's --data synthetic: full-length
    # sequences, two segments, every key real, predictions at every sixth
    # position from 1. Data loading is not what is measured.
    input_ids = torch.randint(SPECIAL_TOKENS, args.vocab, (args.batch, args.seq))
    segment_ids = (torch.arange(args.seq) >= args.seq // 2).long().expand(args.batch, args.seq)
    input_mask = torch.ones(args.batch, args.seq, dtype=torch.long)
    masked_positions = (1 + 6 * torch.arange(args.max_pred)).expand(args.batch, args.max_pred)
    mlm_labels = torch.randint(SPECIAL_TOKENS, args.vocab, (args.batch * args.max_pred,))
    nsp_labels = torch.randint(0, 2, (args.batch,))

    def loss_of_batch():
        mlm_logits, nsp_logits = model(input_ids, segment_ids, input_mask, masked_positions)
        return F.cross_entropy(mlm_logits, mlm_labels) + F.cross_entropy(nsp_logits, nsp_labels)

    times, cpu_times = time_training_steps(loss_of_batch, opt, args.warmup, args.steps)
    # The median is robust to the odd step slowed by the OS.
    median = statistics.median(times)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"mean_step_s={statistics.fmean(times):.4f} min_step_s={min(times):.4f} max_step_s={max(times):.4f}")
    print(f"torch_tokens_per_s={args.batch * args.seq / median:.1f} steps={args.steps} batch={args.batch} "
          f"seq={args.seq} threads={args.threads} median_step_s={median:.4f} "
          f"median_cpu_s={statistics.median(cpu_times):.4f} peak_rss_mib={peak_rss_mib:.0f} "
          f"torch={torch.__version__}")


if __name__ == "__main__":
    main()
