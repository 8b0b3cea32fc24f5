# frozen_string_literal: true

# The Ruby side of parity/test_save.py: Torch.save with pytorch_parity, of a checkpoint torch.rb read
# (CHECKPOINT, a state dict), of kinds(), the Ruby twin of the test's kinds(), and of deviations(), into
# OUT_DIR under the names the test gives its Python files.
#
#   ruby parity/save_side.rb RUBY_PORT CHECKPOINT OUT_DIR

port = File.expand_path(ARGV.fetch(0))
require File.join(port, "lib/hymenoptera/python_reference")
ENV["BUNDLE_GEMFILE"] ||= File.join(Hymenoptera::PythonReference::ROOT, "Gemfile")
require "bundler/setup"
require File.join(port, "lib/hymenoptera/threads")
Hymenoptera::Threads.configure
$LOAD_PATH.unshift(File.join(port, "lib"))
require "pytorch_parity"

DTYPES = %i[uint8 int8 int16 int32 int64 float16 bfloat16 float32 float64 complex64 bool].freeze

# Every kind of value the file holds, in test_save.py's kinds() order: tensors of each dtype, a scalar,
# an empty tensor, one tensor twice, views sharing its storage, numbers at each opcode's bounds,
# strings, dicts and lists past a batch of 1000 and past 256 memo entries, nesting.
def kinds
  base = Torch.arange(12, dtype: :float64).reshape(3, 4)
  {"dtypes" => DTYPES.to_h { |dtype| [dtype.to_s, (Torch.arange(6) % 3).to(dtype)] },
   "scalar" => Torch.tensor(5), "empty" => Torch.empty(0, 2), "grad" => Torch.ones(2, requires_grad: true),
   "base" => base, "transposed" => base.t, "same" => base, "row" => base[1],
   "ints" => [0, 255, 256, 65_535, 65_536, -1, -(2**31), (2**31) - 1],
   "floats" => [2.5, -0.0, 1e300], "strings" => ["", "é", "ants"], "none" => nil, "yes" => true, "no" => false,
   "thousand" => (0...1000).to_h { |i| ["k#{i}", i] }, "more" => (0...1001).to_h { |i| [i, "v#{i}"] },
   "list" => (0...1001).to_a, "nested" => {"a" => [base, {"b" => 2, "c" => [3, 4]}], 7 => []}}
end

# What LibTorch's unpickler reads only otherwise than pickle writes it.
def deviations
  {"one" => {"x" => 1}, "single" => [Torch.ones(1)], "big" => 2**40, "negative" => -(2**40)}
end

checkpoint, out = ARGV.fetch(1), ARGV.fetch(2)
Torch.save(Torch.load(checkpoint), File.join(out, "net.pth"))
Torch.save(kinds, File.join(out, "kinds.pth"))
Torch.save(deviations, File.join(out, "deviations.pth"))
