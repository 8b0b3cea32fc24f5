# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::RandomResizedCrop (lib/torchvision/transforms/random_resized_crop.rb)
# Bug: it rounds the crop's sides half up, where Python's round() goes to even (here the fallback
#   crop's height, 2 / 0.8 = 2.5)
# Reproduction:
#   TorchVision::Transforms::RandomResizedCrop.new(2).params(Vips::Image.black(2, 10), [2.0, 2.0], [0.8, 1.25])
# Upstream gives: [3, 0, 3, 2]
# Python gives: (4, 0, 2, 2)
# In Python: transforms.RandomResizedCrop.get_params(Image.new("RGB", (2, 10)), [2.0, 2.0], [0.8, 1.25])

require_relative "../../torch/tensor_item"
require_relative "functional"

module PytorchParity
  # transforms.RandomResizedCrop's get_params as torchvision 0.14 draws them: a crop of random area
  # (scale) and aspect ratio (ratio), drawn from LibTorch's global generator exactly as Python draws
  # them, sides rounded half to even as Python's round() does; the crop and the resize are F's
  # (torchvision/transforms/functional.rb).
  module RandomResizedCropParams
    # torch.log(torch.tensor(ratio)), which Python computes at every call, in float32: the same
    # numbers each time.
    LOG_RATIOS = Hash.new { |cache, ratio| cache[ratio] = Torch.log(Torch.tensor(ratio)).to_a }

    # [i, j, h, w]: the crop's top, left, height and width. Ten tries at a random area and aspect
    # ratio, then the largest central crop within the ratio range.
    def params(img, scale, ratio)
      return super unless Functional.image?(img)

      width, height = Functional.image_size(img)
      area = height * width

      log_ratio = LOG_RATIOS[ratio]
      10.times do
        target_area = area * TensorItem.item(Torch.empty(1).uniform!(scale[0], scale[1]))
        aspect_ratio = TensorItem.item(Torch.exp(Torch.empty(1).uniform!(log_ratio[0], log_ratio[1])))

        w = Math.sqrt(target_area * aspect_ratio).round(half: :even)
        h = Math.sqrt(target_area / aspect_ratio).round(half: :even)

        if w.positive? && w <= width && h.positive? && h <= height
          i = TensorItem.item(Torch.randint(0, height - h + 1, size: [1], dtype: :int64))
          j = TensorItem.item(Torch.randint(0, width - w + 1, size: [1], dtype: :int64))
          return [i, j, h, w]
        end
      end

      # Fallback to central crop
      in_ratio = width.to_f / height
      if in_ratio < ratio.min
        w = width
        h = (w / ratio.min).round(half: :even)
      elsif in_ratio > ratio.max
        h = height
        w = (h * ratio.max).round(half: :even)
      else # whole image
        w = width
        h = height
      end
      [(height - h) / 2, (width - w) / 2, h, w]
    end
  end
end

TorchVision::Transforms::RandomResizedCrop.prepend(PytorchParity::RandomResizedCropParams)
