"""The token ids every vocabulary reserves, as in Tensor2Tensor's `text_encoder`.

PAD (0) fills batches to a common length and carries no loss; its all-zero embedding is also the
decoder's "GO" input. EOS (1) ends every sentence. Vocabularies, problems, metrics, the
Transformer and the decoder all read them from here.
"""

PAD_ID = 0
EOS_ID = 1
