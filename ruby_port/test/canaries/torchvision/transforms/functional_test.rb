# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class FunctionalCanaryTest < CanaryTest
    canary "torchvision/transforms/functional.rb", now_does: "resize with PIL's bilinear filter" do
      columns = Torch.arange(0, 300, 60).to(:uint8).view(1, 5, 1).expand(5, 5, 1)
      Transforms::F.resize(columns, [3, 3])[0].flatten.to_a
    end
  end
end
