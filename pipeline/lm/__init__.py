"""Small causal language models: configs, the GPT model, tokenizers, checkpoints, training and
document scoring. Every model exposes final hidden states and its unembedding, so scoring always
goes through `siftline.kernels.token_nll` and never materialises the logits (training, which needs
gradients, does).
"""
