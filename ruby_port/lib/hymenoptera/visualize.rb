# frozen_string_literal: true

module Hymenoptera
  # The tutorial's pictures, written to PNG files with libvips (mirrors reference_py/visualize.py, which
  # draws them with matplotlib): a training batch as a grid titled with its classes, and
  # visualize_model's val images titled "predicted: CLASS", in rows of two.
  module Visualize
    LABEL_HEIGHT = 22
    BACKGROUND = 255
    PANEL_SIZE = [320, 240].freeze
    MARGIN = 36
    COLOURS = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]].freeze # matplotlib's first four

    module_function

    # imshow's un-normalising: std * inp + mean, clipped to [0, 1]; [3, H, W] in, [3, H, W] out.
    def denormalize(tensor)
      mean = Torch.tensor(Data::MEAN).reshape(3, 1, 1)
      std = Torch.tensor(Data::STD).reshape(3, 1, 1)
      (tensor * std + mean).clamp(0, 1)
    end

    # A batch of training data as one grid, titled with its classes.
    def save_train_grid(dataloader, class_names, path)
      inputs, classes = dataloader.first
      grid = ImageFile.to_vips(denormalize(TorchVision::Utils.make_grid(inputs)))
      ImageFile.write_png(with_label(grid, classes.to_a.map { |x| class_names[x] }.join(", ")), path)
    end

    # visualize_model: the first num_images val images, each titled with the model's prediction, in
    # num_images / 2 rows of two. Leaves the model in the mode it was in.
    def visualize_model(model, dataloader, class_names, path, num_images: 6)
      was_training = model.training
      model.eval
      cells = []
      Torch.no_grad do
        dataloader.each do |inputs, _labels|
          _, preds = Torch.max(model.call(inputs), 1)
          inputs.size(0).times do |j|
            image = ImageFile.to_vips(denormalize(inputs[j]))
            cells << with_label(image, "predicted: #{class_names[preds[j].item]}")
            break if cells.size == num_images
          end
          break if cells.size == num_images
        end
      end
      model.train(was_training)
      ImageFile.write_png(Vips::Image.arrayjoin(cells, across: 2, shim: 4, background: BACKGROUND), path)
    end

    # Loss, accuracy and learning rate per epoch, from curves.json's epochs: three panels side by side.
    def plot_curves(epochs, path)
      phases = %w[train val]
      panels = [
        ["loss", phases.map { |phase| [phase, epochs.map { |e| e[:"#{phase}_loss"] }] }, false],
        ["accuracy", phases.map { |phase| [phase, epochs.map { |e| e[:"#{phase}_acc"] }] }, false],
        ["learning rate (log)", epochs[0][:lr].each_index.map { |g| ["group #{g}", epochs.map { |e| e[:lr][g] }] }, true]
      ]
      images = panels.map { |title, series, log| panel(title, series, log: log) }
      ImageFile.write_png(Vips::Image.arrayjoin(images, shim: 8, background: BACKGROUND), path)
    end

    # One framed plot of named series over the epochs, its title above, value range and legend inside.
    def panel(title, series, log: false)
      width, height = PANEL_SIZE
      scale = ->(v) { log ? Math.log10(v) : v }
      low, high = series.flat_map { |_, values| values.map(&scale) }.minmax
      high = low + 1 if high == low
      count = series[0][1].size
      x = ->(i) { (MARGIN + (width - 2 * MARGIN) * (count > 1 ? i.to_f / (count - 1) : 0.5)).round }
      y = ->(v) { (height - MARGIN - (height - 2 * MARGIN) * (scale.(v) - low) / (high - low)).round }
      image = Vips::Image.black(width, height, bands: 3).new_from_image([BACKGROUND] * 3).cast(:uchar)
      image = image.draw_rect([0, 0, 0], MARGIN, MARGIN, width - 2 * MARGIN, height - 2 * MARGIN)
      series.each_with_index do |(_, values), k|
        values.each_cons(2).with_index do |(a, b), i|
          image = image.draw_line(COLOURS[k % COLOURS.size], x.(i), y.(a), x.(i + 1), y.(b))
        end
        values.each_with_index { |v, i| image = image.draw_circle(COLOURS[k % COLOURS.size], x.(i), y.(v), 2, fill: true) }
      end
      image = draw_text(image, title, (width / 2) - 40, 8)
      image = draw_text(image, format("%.4g", log ? 10**high : high), 2, MARGIN - 14)
      image = draw_text(image, format("%.4g", log ? 10**low : low), 2, height - MARGIN + 2)
      image = draw_text(image, "epoch 0 .. #{count - 1}", (width / 2) - 30, height - 18)
      series.each_with_index.reduce(image) do |img, ((name, _), k)|
        draw_text(img, name, width - MARGIN - 60, MARGIN + 4 + (14 * k), colour: COLOURS[k % COLOURS.size])
      end
    end

    def draw_text(image, text, left, top, colour: [0, 0, 0])
      image.draw_mask(colour, Vips::Image.text(text, dpi: 64), left, top)
    end

    # The image below a white strip holding the text (on one line, cut at the image's width).
    def with_label(image, text)
      mask = Vips::Image.text(text, dpi: 72)
      strip = (mask * -1 + BACKGROUND).cast(:uchar)
      strip = strip.embed(2, [(LABEL_HEIGHT - mask.height) / 2, 0].max, image.width, [LABEL_HEIGHT, mask.height].max,
                          extend: :background, background: [BACKGROUND])
      strip.bandjoin([strip] * (image.bands - 1)).join(image, :vertical)
    end
  end
end
