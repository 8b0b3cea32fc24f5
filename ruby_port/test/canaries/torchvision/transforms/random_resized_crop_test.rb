# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class RandomResizedCropCanaryTest < CanaryTest
    canary "torchvision/transforms/random_resized_crop.rb", now_does: "round the crop's sides half to even" do
      Transforms::RandomResizedCrop.get_params(Torch.zeros(10, 2, 3, dtype: :uint8), [2.0, 2.0], [0.8, 1.25])
    end
  end
end
