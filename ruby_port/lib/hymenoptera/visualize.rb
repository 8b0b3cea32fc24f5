# frozen_string_literal: true

module Hymenoptera
  # The tutorial's pictures, written to PNG files with libvips (mirrors reference_py/visualize.py, which
  # draws them with matplotlib): a training batch as a grid titled with its classes, and
  # visualize_model's val images titled "predicted: CLASS", in rows of two.
  module Visualize
    LABEL_HEIGHT = 22
    BACKGROUND = 255

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

    # The image below a white strip holding the text.
    def with_label(image, text)
      mask = Vips::Image.text(text, dpi: 72, width: image.width - 4)
      strip = (mask * -1 + BACKGROUND).cast(:uchar)
      strip = strip.embed(2, [(LABEL_HEIGHT - mask.height) / 2, 0].max, image.width, [LABEL_HEIGHT, mask.height].max,
                          extend: :background, background: [BACKGROUND])
      strip.bandjoin([strip] * (image.bands - 1)).join(image, :vertical)
    end
  end
end
