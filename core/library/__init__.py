"""The library: corpora, tokenizer, vocabulary, batches, the LSTM VAE, the objectives, training,
evaluation, metrics and their catalogue, checkpoints, n-grams, decoding, CUDA graphs. It imports
neither the commands nor serving."""
