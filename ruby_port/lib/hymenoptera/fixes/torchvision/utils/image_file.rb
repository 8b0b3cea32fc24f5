# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Utils.save_image (lib/torchvision/utils.rb)
# Bug: it reads a [H, W, C] array's shape as width, height, so non-square images come out with width
#   and height swapped (and the pixels scrambled)
# Reproduction:
#   folder = Dir.mktmpdir
#   TorchVision::Utils.save_image(Torch.zeros(3, 2, 5), File.join(folder, "grid.png"))
#   Vips::Image.new_from_file(File.join(folder, "grid.png")).width
# Upstream gives: 2
# Python gives: 5
# In Python: save_image(torch.zeros(3, 2, 5), "grid.png"); Image.open("grid.png").size[0]

module Hymenoptera
  # Tensor images to PNG files. torchvision-ruby 0.3.0's save_image swaps width and height
  # (Utils.image_from_array reads shape [H, W, C] as width, height), so non-square grids come out
  # scrambled; this does the same rounding as torchvision's save_image with the axes right.
  module ImageFile
    module_function

    # A [C, H, W] float tensor in [0, 1] as an 8-bit libvips image.
    def to_vips(tensor)
      array = tensor.detach.mul(255).add!(0.5).clamp!(0, 255).permute(1, 2, 0).to(:uint8).contiguous
      height, width, bands = array.shape
      Vips::Image.new_from_memory_copy(array.numo.to_binary, width, height, bands, :uchar)
    end

    def write_png(image, path)
      image = to_vips(image) if Torch.tensor?(image)
      Atomic.write(path, image.write_to_buffer(".png"))
    end
  end
end
