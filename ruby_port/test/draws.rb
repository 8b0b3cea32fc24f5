# frozen_string_literal: true

# parity/data_loader_side.py's Draws, for its Ruby side (parity/data_loader_side.rb) and the DataLoader's
# tests here: a map-style dataset whose sample draws from the global generator and carries its index,
# [Torch.rand(3), index].
class Draws
  def initialize(size)
    @size = size
  end

  attr_reader :size

  def [](index)
    [Torch.rand(3), index]
  end
end
