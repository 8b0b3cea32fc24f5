# frozen_string_literal: true

require_relative "test_helper"

class TrainTest < Minitest::Test
  include Hymenoptera::TestSupport
  # Logits that are one learnable bias, whatever the input: the accuracy follows the bias exactly.
  class ConstantLogits < Torch::NN::Module
    def initialize
      super()
      @bias = Torch::NN::Parameter.new(Torch.tensor([0.0, 1.0])) # favours class 1
    end

    def forward(x)
      x * 0 + @bias
    end
  end

  Samples = Struct.new(:labels) do
    def [](index) = [Torch.zeros(1), labels[index]]
    def size = labels.size
  end

  def loader(labels)
    sampler = Torch::Utils::Data::RandomSampler.new(Array.new(labels.size), generator: Torch::Generator.new.manual_seed(0))
    Torch::Utils::Data::DataLoader.new(Samples.new(labels), batch_size: 4, sampler: sampler)
  end

  # Training on class 0 only moves the bias from class 1 (val acc 0.75) to class 0 (val acc 0.25)
  # after the fourth step (the lr halves after two): the best is the first epoch, not a later tie nor the last.
  def run_training
    model = ConstantLogits.new
    optimizer = Torch::Optim::SGD.new(model.parameters, lr: 0.3, momentum: 0)
    scheduler = Torch::Optim::LRScheduler::StepLR.new(optimizer, step_size: 2, gamma: 0.5)
    dataloaders = {"train" => loader([0, 0, 0, 0]), "val" => loader([1, 1, 1, 0])}
    result = nil
    out, = capture_io do
      result = Hymenoptera::Train.train_model(model, Torch::NN::CrossEntropyLoss.new, optimizer, scheduler,
                                              dataloaders, num_epochs: 4, progress: false)
    end
    [*result, out]
  end

  def test_the_best_val_epoch_wins_strictly_and_its_weights_are_loaded
    model, history, = run_training
    assert_equal [0.75, 0.75, 0.75, 0.25], history[:epochs].map { |e| e[:val_acc] }
    assert_equal 0, history[:best_epoch]
    assert_equal 0.75, history[:best_acc]
    # the weights after epoch 0: one SGD step of lr 0.3 on the gradient softmax([0, 1]) - [1, 0]
    step = 0.3 * (1 - (1 / (1 + Math.exp(1))))
    assert_in_delta 0.0 + step, model.bias[0].item, 1e-6
    assert_in_delta 1.0 - step, model.bias[1].item, 1e-6
  end

  def test_history_and_log_follow_the_tutorial
    _, history, out = run_training
    assert_equal [[0.3], [0.3], [0.15], [0.15]], history[:epochs].map { |e| e[:lr] }
    assert_equal %i[epoch lr train_loss train_acc val_loss val_acc], history[:epochs][0].keys
    assert_equal [0.0] * 4, history[:epochs].map { |e| e[:train_acc] }
    lines = out.lines.map(&:chomp)
    assert_equal ["Epoch 0/3", "----------"], lines[0, 2]
    assert_match(/\Atrain Loss: \d\.\d{4} Acc: 0\.0000\z/, lines[2])
    assert_equal "val Loss: #{format("%.4f", history[:epochs][0][:val_loss])} Acc: 0.7500", lines[3]
    assert_equal ["", "Epoch 1/3"], lines[4, 2]
    assert_match(/\ATraining complete in 0m \d+s\z/, lines[-2])
    assert_equal "Best val Acc: 0.750000", lines[-1]
  end

  # The trainers' `data:` line, in train.py's words too (reference_py/tests/test_train_cli.py holds the same lines).
  def test_the_data_line_says_what_the_python_reference_says
    sizes = {"train" => 4, "val" => 3}
    assert_equal "data/x (generated stand-in, NOT the real hymenoptera_data; 4 train, 3 val; classes ants, bees)",
                 Hymenoptera::Data.describe("data/x", true, sizes, %w[ants bees])
    assert_equal "data/x (images; 4 train, 3 val; classes ants, bees, wasps)",
                 Hymenoptera::Data.describe("data/x", false, sizes, %w[ants bees wasps])
  end

  def test_print_config_shows_every_default_and_trains_nothing
    stdout, stderr, status = run_bin("train", "--print-config")
    assert status.success?, stderr
    config = JSON.parse(stdout)
    expected = {"backbone_lr" => 1e-4, "batch_size" => 4, "data_dir" => nil, "epochs" => 25, "gamma" => 0.1,
                "head_lr" => 1e-3, "lr" => 0.001, "momentum" => 0.9, "out_dir" => "runs/train/ruby", "progress" => true,
                "record" => false, "seed" => 0, "step_size" => 7, "strategy" => "finetune",
                "threads" => 1, "weights" => "net.pth", "workers" => 4}
    assert_equal expected, config
    assert_empty Dir.children(tmpdir)
  end

  def test_an_observer_sees_every_step_and_epoch
    recorder = Hymenoptera::Recorder.new
    model = ConstantLogits.new
    optimizer = Torch::Optim::SGD.new(model.parameters, lr: 0.3, momentum: 0.9)
    scheduler = Torch::Optim::LRScheduler::StepLR.new(optimizer, step_size: 2, gamma: 0.5)
    dataloaders = {"train" => loader([0, 0, 0, 0, 1, 1, 1, 1]), "val" => loader([1, 1, 1, 0])}
    capture_io do
      Hymenoptera::Train.train_model(model, Torch::NN::CrossEntropyLoss.new, optimizer, scheduler, dataloaders,
                                     num_epochs: 3, progress: false, observer: recorder)
    end
    recorder.write(tmpdir)
    assert_equal [3, 2], Hymenoptera::TensorIO.read_bundle(File.join(tmpdir, "step_losses"))["step_losses"].shape
    grads = Hymenoptera::TensorIO.read_bundle(File.join(tmpdir, "grads_step1"))
    momentum = Hymenoptera::TensorIO.read_bundle(File.join(tmpdir, "momentum_step1"))
    assert_equal ["bias"], grads.keys
    assert Torch.equal(grads["bias"], momentum["bias"]) # SGD's first buffer is the gradient
    assert_equal [4], Hymenoptera::TensorIO.read_bundle(File.join(tmpdir, "first_batch"))["labels"].shape
  end
end
