"""CoLoR-Filter (conditional loss reduction): score each document by how much a model fine-tuned
on the target text lowers its loss compared with the prior model, then keep the top share. This
package holds the pieces specific to that method: reading the target text the conditional model
is fine-tuned on (`siftline.color.target`) and preparing both models before scoring
(`siftline.color.prepare`); the language-model engine itself lives in `siftline.lm`.
"""
