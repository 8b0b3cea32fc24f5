# frozen_string_literal: true

# The Ruby side of parity/test_data_loader.py: SPEC's loaders through Torch::Utils::Data::DataLoader
# with pytorch_parity, every batch into one tensor bundle (parity/data_loader_side.py makes the Python side's).
#
#   ruby parity/data_loader_side.rb RUBY_PORT SPEC.json OUT_STEM
#
# RUBY_PORT: the port to load (ruby_port/, or the copy PARITY_RUBY_PORT names).

port = File.expand_path(ARGV.fetch(0))
require File.join(port, "lib/hymenoptera/cli")

Hymenoptera::CLI.run("data_loader_side") do
  Hymenoptera::CLI.load_port
  require File.join(port, "lib/pytorch_parity/torch/utils/data/data_loader_workers")
  # test_data_loader.py's Draws, from this checkout: part of the test, not of the port under test (a copy
  # PARITY_RUBY_PORT names may have no test/).
  require_relative "../ruby_port/test/draws"

  # test_data_loader.py's worker_init_fn: the worker's generator seeded again from its seed and id.
  def reseed(worker_id)
    Torch.manual_seed(Torch::Utils::Data.get_worker_info.seed % 1000 * 7 + worker_id)
  end

  _, spec_path, out = ARGV
  spec = JSON.parse(File.read(spec_path))
  tensors = {}
  spec["scenarios"].each do |scenario|
    name = scenario["name"]
    Torch.manual_seed(scenario["seed"])
    generator = scenario["generator_seed"] && Torch::Generator.new.manual_seed(scenario["generator_seed"])
    loader = Torch::Utils::Data::DataLoader.new(
      Draws.new(scenario["size"]), batch_size: scenario["batch_size"], shuffle: scenario["shuffle"], generator: generator,
                                   drop_last: scenario["drop_last"], num_workers: scenario["num_workers"],
                                   worker_init_fn: scenario["worker_init"] ? method(:reseed) : nil
    )
    scenario["passes"].times do |pass|
      loader.each_with_index do |(samples, indices), batch|
        tensors["#{name}/pass#{pass}/batch#{batch}/samples"] = samples
        tensors["#{name}/pass#{pass}/batch#{batch}/indices"] = indices
      end
    end
    tensors["#{name}/global generator after"] = Torch.rand(2)
  end

  images = spec["images"]
  if images
    image_sets = Hymenoptera::Data.image_datasets(images["data_dir"])
    images["loaders"].each do |loader_spec|
      Torch.manual_seed(loader_spec["seed"])
      loader = Torch::Utils::Data::DataLoader.new(image_sets[loader_spec["split"]], batch_size: images["batch_size"],
                                                                                    shuffle: true, num_workers: loader_spec["num_workers"])
      loader.each_with_index do |(inputs, labels), batch|
        tensors["#{loader_spec['name']}/batch#{batch}/inputs"] = inputs
        tensors["#{loader_spec['name']}/batch#{batch}/labels"] = labels
      end
    end
  end

  Hymenoptera::TensorIO.write_bundle(out, tensors, meta: Hymenoptera::RuntimeInfo.describe)
end
