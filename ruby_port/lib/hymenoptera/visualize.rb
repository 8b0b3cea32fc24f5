# frozen_string_literal: true

module Hymenoptera
  # The tutorial's pictures, written to PNG files by matplotlib (its Agg backend, no window), called as
  # reference_py/visualize.py calls it: through PyCall (the pycall and matplotlib gems) in Debian's
  # Python with python3-matplotlib, the interpreter PythonReference finds; loaded when first drawing.
  module Visualize
    DPI = 100
    TRAIN_GRID_SIZE = [12, 4].freeze # inches, as reference_py/visualize.py's figures
    CURVES_SIZE = [15, 4].freeze

    module_function

    def plt
      @plt ||= begin
        # Training is over: the heap's free top, kept for the next step, goes back before Python loads here.
        PytorchParity::TensorMemory.trim_heap
        ENV["PYTHON"] ||= PythonReference.interpreter
        require "matplotlib"
        Matplotlib.use("Agg")
        require "matplotlib/pyplot"
        Matplotlib::Pyplot
      end
    end

    # imshow's un-normalising: std * inp + mean, clipped to [0, 1]; [3, H, W] in, [3, H, W] out.
    def denormalize(tensor)
      mean = Torch.tensor(Data::MEAN).reshape(3, 1, 1)
      std = Torch.tensor(Data::STD).reshape(3, 1, 1)
      (tensor * std + mean).clamp(0, 1)
    end

    # Display image for Tensor (undoing Normalize).
    def imshow(inp, title: nil, ax: plt.gca)
      image = denormalize(inp).permute(1, 2, 0).contiguous.to(:float32)
      ax.imshow(numpy.frombuffer(image._data_str.b, dtype: "float32").reshape(*image.shape))
      ax.set_title(title) unless title.nil?
    end

    def numpy
      plt # PyCall set up on Debian's Python
      @numpy ||= PyCall.import_module("numpy")
    end

    def save_figure(fig, path)
      Atomic.atomic_path(path) { |tmp| fig.savefig(tmp, format: "png", dpi: DPI) }
      plt.close(fig)
    end

    # A batch of training data as one grid, titled with its classes.
    def save_train_grid(dataloader, class_names, path)
      inputs, classes = dataloader.first
      out = TorchVision::Utils.make_grid(inputs)
      fig = plt.figure(figsize: TRAIN_GRID_SIZE)
      imshow(out, title: classes.to_a.map { |x| class_names[x] })
      plt.axis("off")
      save_figure(fig, path)
    end

    # Validation images with the model's predicted labels. Leaves the model in the mode it was in.
    def visualize_model(model, dataloader, class_names, path, num_images: 6)
      was_training = model.training
      model.eval
      images_so_far = 0
      fig = plt.figure(figsize: predictions_size(num_images))
      Torch.no_grad do
        dataloader.each do |inputs, _labels|
          _, preds = Torch.max(model.call(inputs), 1)
          inputs.size(0).times do |j|
            images_so_far += 1
            ax = plt.subplot((num_images + 1) / 2, 2, images_so_far)
            ax.axis("off")
            ax.set_title("predicted: #{class_names[preds[j].item]}")
            imshow(inputs[j], ax: ax)
            break if images_so_far == num_images
          end
          break if images_so_far == num_images
        end
      end
      model.train(was_training)
      save_figure(fig, path)
    end

    # The size of visualize_model's figure, in inches: rows of two images.
    def predictions_size(num_images)
      [6, 3 * ((num_images + 1) / 2)]
    end

    # Loss, accuracy and learning rate per epoch, from curves.json's epochs.
    def plot_curves(epochs, path)
      x = epochs.map { |e| e[:epoch] }
      fig, axes = *plt.subplots(1, 3, figsize: CURVES_SIZE)
      loss_ax, acc_ax, lr_ax = Array.new(3) { |k| axes[k] }
      %w[train val].each do |phase|
        loss_ax.plot(x, epochs.map { |e| e[:"#{phase}_loss"] }, marker: "o", label: phase)
        acc_ax.plot(x, epochs.map { |e| e[:"#{phase}_acc"] }, marker: "o", label: phase)
      end
      (epochs.empty? ? 0 : epochs[0][:lr].size).times do |group|
        lr_ax.plot(x, epochs.map { |e| e[:lr][group] }, marker: "o", label: "group #{group}")
      end
      lr_ax.set_yscale("log")
      [[loss_ax, "loss"], [acc_ax, "accuracy"], [lr_ax, "learning rate"]].each do |ax, title|
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend
      end
      fig.tight_layout
      save_figure(fig, path)
    end
  end
end
