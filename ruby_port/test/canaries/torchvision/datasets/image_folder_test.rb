# frozen_string_literal: true

require_relative "../../canary"

module Hymenoptera
  class ImageFolderCanaryTest < CanaryTest
    canary "torchvision/datasets/image_folder.rb", now_does: "take a loader: and load RGB as PIL"
  end
end
