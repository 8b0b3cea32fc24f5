"""Where the two stacks really differ and the port cannot make them agree: none at present.

Resampling was one (libvips' filter against PIL's) until the port took up Pillow's bilinear arithmetic
(ruby_port/lib/pytorch_parity/image/resample.rb); parity/test_preprocessing.py now
holds every transform to bit-identity. The zoo (parity/test_zoo.py) found none either: the 18
architectures torchvision-ruby shares with torchvision agree bit for bit on every quantity once the
port's VGG counts BatchNorm batches (ruby_port/lib/pytorch_parity/torch/nn/batch_norm2d.rb).
"""

MEASURED = []  # what parity/report.py lists under "Known divergences" ({"name", "measured", "reason"} each)
