# frozen_string_literal: true

module Hymenoptera
  # The image loader of torchvision's ImageFolder, PIL's Image.open(path).convert("RGB"), on libvips:
  # 8-bit RGB whatever the file holds. Grayscale is replicated, palette images are expanded, an alpha
  # band is dropped (not composited), and CMYK is converted with PIL's plain formula rather than
  # libvips' colour-managed one (which differs by up to 90 levels). torchvision-ruby's loader hands
  # the file's own bands to ToTensor. A file that does not decode raises Vips::Error, also for a
  # truncated JPEG (libvips would otherwise warn and fill grey).
  module RGBLoader
    module_function

    def load(path)
      image = Vips::Image.new_from_file(path, fail_on: :warning)
      return cmyk_to_rgb(image) if image.interpretation == :cmyk && image.bands == 4

      image = image.colourspace(:srgb) unless image.interpretation == :srgb && image.format == :uchar
      image = image.extract_band(0, n: 3) if image.bands > 3
      image = image.cast(:uchar) unless image.format == :uchar
      image
    end

    # Pillow's cmyk2rgb: with nk = 255 - K, each of R, G, B is nk - C * nk / 255 (rounded as
    # Pillow's MULDIV255 does).
    def cmyk_to_rgb(image)
      cmyk = Numo::Int32.cast(Numo::UInt8.from_binary(image.write_to_memory, [image.height, image.width, 4]))
      nk = 255 - cmyk[true, true, 3..3]
      product = cmyk[true, true, 0..2] * nk + 128
      rgb = (nk - (((product >> 8) + product) >> 8)).clip(0, 255)
      Vips::Image.new_from_memory_copy(Numo::UInt8.cast(rgb).to_binary, image.width, image.height, 3, :uchar)
    end
  end
end
