# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class CenterCropCanaryTest < CanaryTest
    canary "torchvision/transforms/center_crop.rb", now_does: "round the crop's offset half to even" do
      columns = Torch.arange(341).view(1, 341, 1).expand(224, 341, 1)
      Transforms::CenterCrop.new(224).call(columns)[0, 0, 0].item
    end
  end
end
