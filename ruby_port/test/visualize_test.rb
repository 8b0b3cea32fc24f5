# frozen_string_literal: true

require_relative "test_helper"

class VisualizeTest < Minitest::Test
  include Hymenoptera::TestSupport
  Visualize = Hymenoptera::Visualize

  # Two batches of four 3x32x32 images, labels 0, 1, 0, 1, ...
  Batches = Struct.new(:batches) do
    include Enumerable
    def each(&block) = batches.each(&block)
  end

  def loader
    Torch.manual_seed(0)
    Batches.new(Array.new(2) { [Torch.randn(4, 3, 32, 32), Torch.tensor([0, 1, 0, 1])] })
  end

  def png(name)
    Vips::Image.new_from_file(File.join(tmpdir, name))
  end

  # A PNG's [width, height], and whether it shows more than one colour.
  def drawn(name)
    image = png(name)
    [[image.width, image.height], image.deviate.positive?]
  end

  def pixels(inches)
    inches.map { |size| size * Visualize::DPI }
  end

  def test_denormalize_undoes_normalize
    image = Torch.rand(3, 4, 4)
    normalized = TorchVision::Transforms::F.normalize(image, Hymenoptera::Data::MEAN, Hymenoptera::Data::STD)
    assert (Visualize.denormalize(normalized) - image).abs.max.item < 1e-6
  end

  def test_the_train_grid_is_drawn_at_its_figure_size
    Visualize.save_train_grid(loader, %w[ants bees], File.join(tmpdir, "grid.png"))
    assert_equal [pixels(Visualize::TRAIN_GRID_SIZE), true], drawn("grid.png")
  end

  def test_visualize_model_shows_six_predictions_and_keeps_the_mode
    model = Hymenoptera::Model.resnet18_with_head
    model.train
    Visualize.visualize_model(model, loader, %w[ants bees], File.join(tmpdir, "predictions.png"))
    assert model.training
    assert_equal [pixels(Visualize.predictions_size(6)), true], drawn("predictions.png")
  end

  def test_the_curves_are_drawn_at_their_figure_size
    epochs = Array.new(3) { |i| {epoch: i, lr: [1e-3, 1e-4], train_loss: 1.0 / (i + 1), val_loss: 0.9, train_acc: 0.5, val_acc: 0.6} }
    Visualize.plot_curves(epochs, File.join(tmpdir, "curves.png"))
    assert_equal [pixels(Visualize::CURVES_SIZE), true], drawn("curves.png")
  end
end
