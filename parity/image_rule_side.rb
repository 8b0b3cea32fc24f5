# frozen_string_literal: true

# The Ruby side of parity/test_image_rule.py: SPEC's data dir through the port's image_datasets (its
# pre-check, then pytorch_parity's ImageFolder), SPEC's listing folder through ImageFolder alone, and
# SPEC's images through the port's loader, with the image extensions of the port's pre-check and of
# torchvision-ruby; written as JSON (the Python side makes the same in the test).
#
#   ruby parity/image_rule_side.rb RUBY_PORT SPEC.json OUT.json
#
# RUBY_PORT: the port to load (ruby_port/, or the copy PARITY_RUBY_PORT names). Loaded as a torch.rb
# user's program loads it, not through the port's CLI, which silences libvips' warnings for the whole
# process (VIPS_WARNING): the loader must say nothing about a damaged JPEG on its own, as PIL says nothing.

port = File.expand_path(ARGV.fetch(0))
ENV.delete("VIPS_WARNING")
require File.join(port, "lib/hymenoptera/python_reference")
ENV["BUNDLE_GEMFILE"] ||= File.join(Hymenoptera::PythonReference::ROOT, "Gemfile")
require "bundler/setup"
require File.join(port, "lib/hymenoptera/threads")
Hymenoptera::Threads.configure
require File.join(port, "lib/hymenoptera")

def relative(samples, root)
  samples.map { |path, target| [path.delete_prefix("#{File.expand_path(root)}/"), target] }
end

# sha256 of the loader's pixels (uint8 [H, W, 3], np.asarray's layout), or the loader's one-line refusal.
def decoded(path)
  pixels = Hymenoptera::Data.rgb_loader(path).contiguous
  {"sha256" => Digest::SHA256.hexdigest(pixels.numo.to_binary), "shape" => pixels.shape}
rescue Hymenoptera::UserError => e
  {"refused" => e.message}
end

_, spec_path, out = ARGV
spec = JSON.parse(File.read(spec_path))
datasets = Hymenoptera::Data.image_datasets(spec["data_dir"]).to_h do |split, dataset|
  samples = dataset.instance_variable_get(:@samples)
  [split, {"classes" => dataset.classes, "samples" => relative(samples, File.join(spec["data_dir"], split)),
           "pixels" => samples.map { |path, _| decoded(path) }}]
end
listing = TorchVision::Datasets::ImageFolder.new(spec["listing_root"])
File.write(out, JSON.generate({"datasets" => datasets,
                               "listing" => relative(listing.instance_variable_get(:@samples), spec["listing_root"]),
                               "images" => spec["images"].map { |path| decoded(path) },
                               "extensions" => {"port" => Hymenoptera::DataLayout::IMG_EXTENSIONS,
                                                "torchvision" => TorchVision::Datasets::ImageFolder::IMG_EXTENSIONS}}))
