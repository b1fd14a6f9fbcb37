"""Small causal language models: configs, the GPT model, tokenizers, checkpoints, training and
document scoring. Every model exposes final hidden states and its unembedding, so the per-token
loss always goes through `kernels.token_nll` and never materialises the logits.
"""
