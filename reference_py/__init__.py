"""The Python reference of PyTorch's "Transfer Learning for Computer Vision" tutorial."""
