# frozen_string_literal: true

# Fix: torchvision-ruby 0.3.0, TorchVision::Transforms::F (lib/torchvision/transforms/functional.rb)
# Bug: it resizes libvips images with libvips' thumbnail filter, up to 134 levels away from the
#   bilinear filter of PIL, which torchvision resizes with
# Reproduction:
#   image = (Vips::Image.xyz(5, 5)[0] * 60).cast(:uchar)
#   TorchVision::Transforms::F.resize(image, [3, 3]).to_a[0].flatten
# Upstream gives: [19, 120, 221]
# Python gives: [26, 120, 214]
# In Python: np.asarray(F.resize(Image.fromarray(np.tile(np.arange(5) * 60, (5, 1)).astype(np.uint8)), [3, 3]))[0].tolist()

require "torchvision"
require_relative "../../torch/tensor_memory"
require_relative "../../image/vips_tensor"
require_relative "../../image/resample"

module PytorchParity
  # torchvision.transforms.functional (0.14) as it treats a PIL image, for images as torchvision-ruby
  # has them: uint8 Torch tensors [H, W, C] (the layout of np.asarray(pil_image), what ImageFolder's
  # loader gives, image/rgb_loader.rb) or 8-bit libvips images (given back as libvips
  # images). The results are PIL's to the bit: crops and flips move pixels, resize is Pillow's bilinear
  # filter (Image::Resample), to_tensor and normalize run the same LibTorch operations as torchvision.
  # torchvision-ruby's functional transforms take libvips images and resize with libvips' own
  # filter instead (up to 134 levels away from PIL's).
  module Functional
    module_function

    # Whether img is an image these functions take: a uint8 tensor [H, W, C] or an 8-bit Vips::Image.
    def image?(img)
      if img.is_a?(Torch::Tensor)
        img.dtype == :uint8 && img.dim == 3
      else
        defined?(Vips::Image) && img.is_a?(Vips::Image) && img.format == :uchar
      end
    end

    # The block's result on img's pixels (a uint8 tensor [H, W, C]); a Vips::Image in, a Vips::Image out.
    def on_pixels(img)
      return yield(img) if img.is_a?(Torch::Tensor)

      out = yield(Image::VipsTensor.pixels(img))
      height, width, bands = out.shape
      Vips::Image.new_from_memory(out.contiguous._data_str, width, height, bands, :uchar)
    end

    # [width, height], as F.get_image_size.
    def image_size(img)
      img.is_a?(Torch::Tensor) ? [img.size(1), img.size(0)] : [img.width, img.height]
    end

    # F.crop = PIL's img.crop((left, top, left + width, top + height)): pixels outside the image are 0.
    # A crop inside the image is a view.
    def crop(img, top, left, height, width)
      img_height, img_width, channels = img.shape
      if top >= 0 && left >= 0 && top + height <= img_height && left + width <= img_width
        return TensorMemory.view_only(img.narrow(0, top, height)) { |rows| rows.narrow(1, left, width) }
      end

      out = Torch.zeros(height, width, channels, dtype: img.dtype)
      rows = [top, 0].max...[top + height, img_height].min
      columns = [left, 0].max...[left + width, img_width].min
      if rows.size.positive? && columns.size.positive?
        out.narrow(0, rows.begin - top, rows.size).narrow(1, columns.begin - left, columns.size)
           .copy!(img.narrow(0, rows.begin, rows.size).narrow(1, columns.begin, columns.size))
      end
      out
    end

    # F.pad(img, [left, top, right, bottom]) with fill 0 (PIL's ImageOps.expand).
    def pad(img, left, top, right, bottom)
      height, width, channels = img.shape
      out = Torch.zeros(height + top + bottom, width + left + right, channels, dtype: img.dtype)
      out.narrow(0, top, height).narrow(1, left, width).copy!(img)
      out
    end

    # The [height, width] that F.resize gives: an Integer (or [size]) is the shorter side, the longer
    # becomes int(size * long / short); [height, width] is taken as it is.
    def resized_output_size(height, width, size)
      return size if size.is_a?(Array) && size.size == 2

      size = size[0] if size.is_a?(Array)
      short, long = width <= height ? [width, height] : [height, width]
      new_long = size * long / short # Python's int(size * long / short): the same below 2**53
      width <= height ? [new_long, size] : [size, new_long]
    end

    # F.resize with bilinear interpolation: the image itself when the size does not change, else
    # Pillow's Image.resize((w, h), BILINEAR).
    def resize(img, size)
      height, width, = img.shape
      out_height, out_width = resized_output_size(height, width, size)
      return img if out_height == height && out_width == width

      Image::Resample.bilinear(img, out_width, out_height)
    end

    # F.resized_crop: a crop, then a resize (not a resize of a box).
    def resized_crop(img, top, left, height, width, size)
      cropped = crop(img, top, left, height, width)
      resize(cropped, size).tap { |resized| TensorMemory.free_input(cropped, resized) }
    end

    # F.center_crop: padded with 0 where the image is smaller than the crop, offsets
    # int(round((H - h) / 2.0)): Python rounds halves to even.
    def center_crop(img, output_size)
      crop_height, crop_width = output_size.is_a?(Integer) ? [output_size, output_size] : output_size
      crop_width ||= crop_height
      image_width, image_height = image_size(img)
      if crop_width > image_width || crop_height > image_height
        pad_width = [crop_width - image_width, 0].max
        pad_height = [crop_height - image_height, 0].max
        img = pad(img, pad_width / 2, pad_height / 2, (pad_width + 1) / 2, (pad_height + 1) / 2)
        image_width, image_height = image_size(img)
        return img if crop_width == image_width && crop_height == image_height
      end
      crop_top = ((image_height - crop_height) / 2.0).round(half: :even)
      crop_left = ((image_width - crop_width) / 2.0).round(half: :even)
      crop(img, crop_top, crop_left, crop_height, crop_width)
    end

    # F.hflip: PIL's FLIP_LEFT_RIGHT. On an image stored pixel by pixel (stride 1 between channels)
    # gathering the columns in reverse is twice as fast as flip, which is fast on planes.
    def hflip(img)
      return img.flip(1) unless img.stride(2) == 1 && img.size(2) > 1

      img.index_select(1, Torch.arange(img.size(1) - 1, -1, -1, dtype: :int64))
    end

    # F.to_tensor of an 8-bit image: [C, H, W] float32 in [0, 1], as torchvision computes it
    # (permute to CHW, to float, div(255); here the first two in one copy).
    def to_tensor(pic)
      height, width, channels = pic.shape
      planes = pic.permute(2, 0, 1)
      Torch.empty(channels, height, width, dtype: :float32).copy!(planes).div!(255).tap { TensorMemory.free(planes) }
    end

    # F.normalize (not in place): (tensor - mean) / std per channel, in the tensor's dtype. mean and
    # std: lists, or the tensors normalization_tensors makes of them.
    def normalize(tensor, mean, std)
      mean, std = normalization_tensors(mean, std, tensor.dtype) unless Torch.tensor?(mean) && Torch.tensor?(std)
      tensor.sub(mean).div!(std)
    end

    # mean and std as tensors [C, 1, 1] of dtype, as F.normalize converts them.
    def normalization_tensors(mean, std, dtype)
      std = Torch.tensor(std, dtype: dtype)
      raise ArgumentError, "std evaluated to zero after conversion to #{dtype}, leading to division by zero." if std.eq(0).any.item

      [Torch.tensor(mean, dtype: dtype).view(-1, 1, 1), std.view(-1, 1, 1)]
    end
  end

  # TorchVision::Transforms::F's functions as torchvision's on a PIL image, for Functional's images;
  # anything else goes to torchvision-ruby's.
  module FunctionalOnImages
    %i[crop resize resized_crop center_crop hflip].each do |name|
      define_method(name) do |img, *args|
        if Functional.image?(img)
          Functional.on_pixels(img) { |pixels| Functional.public_send(name, pixels, *args) }
        else
          super(img, *args)
        end
      end
    end

    def to_tensor(pic)
      return super unless Functional.image?(pic)

      pic.is_a?(Torch::Tensor) ? Functional.to_tensor(pic) : Functional.to_tensor(Image::VipsTensor.pixels(pic))
    end

    def normalize(tensor, mean, std, inplace: false)
      inplace || !Torch.tensor?(tensor) ? super : Functional.normalize(tensor, mean, std)
    end

    def image_size(img)
      Functional.image?(img) ? Functional.image_size(img) : super
    end
  end
end

TorchVision::Transforms::Functional.singleton_class.prepend(PytorchParity::FunctionalOnImages)
