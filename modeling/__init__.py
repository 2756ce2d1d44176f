"""Show, Attend and Tell model: frozen ResNet-50 encoder, additive attention, LSTMCell decoder."""
