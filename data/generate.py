"""Regenerate the bundled sample (shadeanalytics.testing.synthetic): python data/generate.py."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shadeanalytics.testing import synthetic

SEED = 7
DATA_DIR = Path(__file__).resolve().parent

# The example response of the GET /clusters/{id}/info docs page, copied verbatim
# (see data/README.md for its known inconsistencies; they are kept on purpose).
SEED_CLUSTER_INFO = """\
{
  "id": "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb",
  "cloud": "denvr",
  "name": "devnr-cluster1",
  "region_info": {
    "region": "houston-usa-1",
    "display_name": "US, Houston, TX"
  },
  "status": "active",
  "created_at": "2023-11-07T05:31:56Z",
  "updated_at": "2023-11-07T05:31:56Z",
  "instances": [
    {
      "id": "d290f1ee-6c54-4b01-90e6-d701748f0851",
      "cloud": "hyperstack",
      "region": "canada-1",
      "shade_instance_type": "A6000",
      "cloud_instance_type": "gpu_1x_a6000",
      "cloud_assigned_id": "13b057d7-e266-4869-985f-760fe75a78b3",
      "shade_cloud": true,
      "name": "cool-gpu-server",
      "configuration": {
        "memory_in_gb": 12,
        "storage_in_gb": 256,
        "vcpus": 6,
        "num_gpus": 1,
        "gpu_type": "A100",
        "interconnect": "pcie",
        "vram_per_gpu_in_gb": 48,
        "gpu_manufacturer": "nvidia",
        "os": "ubuntu_22_shade_os",
        "nvlink": true
      },
      "ip": "1.0.0.1",
      "ssh_user": "shadeform",
      "ssh_port": 22,
      "status": "active",
      "cost_estimate": "103.4",
      "created_at": "2016-08-29T09:12:33.001Z",
      "deleted_at": "2016-08-29T09:12:33.001Z",
      "status_details": "downloading",
      "hourly_price": 210,
      "launch_configuration": {
        "type": "docker",
        "docker_configuration": {
          "image": "vllm/vllm-openai:latest",
          "args": "--model mistralai/Mistral-7B-v0.1",
          "shared_memory_in_gb": 8,
          "envs": [
            {
              "name": "HUGGING_FACE_HUB_TOKEN",
              "value": "hugging_face_api_token"
            }
          ],
          "port_mappings": [
            {
              "host_port": 80,
              "container_port": 8000
            }
          ],
          "volume_mounts": [
            {
              "host_path": "~/.cache/huggingface",
              "container_path": "/root/.cache/huggingface"
            }
          ],
          "registry_credentials": {
            "username": "username",
            "password": "password"
          }
        },
        "script_configuration": {
          "base64_script": "IyEvYmluL2Jhc2gKCiMgRW5kbGVzcyBsb29wCndoaWxlIHRydWUKZG8KICAgICMgRmV0Y2ggYSBjYXQgZmFjdCB3aXRoIGEgbWF4aW11bSBsZW5ndGggb2YgMTQwIGNoYXJhY3RlcnMKICAgIGN1cmwgLS1uby1wcm9ncmVzcy1tZXRlciBodHRwczovL2NhdGZhY3QubmluamEvZmFjdD9tYXhfbGVuZ3RoPTE0MAoKICAgICMgUHJpbnQgYSBuZXdsaW5lIGZvciByZWFkYWJpbGl0eQogICAgZWNobwoKICAgICMgU2xlZXAgZm9yIDMgc2Vjb25kcyBiZWZvcmUgdGhlIG5leHQgaXRlcmF0aW9uCiAgICBzbGVlcCAzCmRvbmUKCgo="
        }
      },
      "tags": [
        "tag1"
      ],
      "port_mappings": [
        {
          "internal_port": 8000,
          "external_port": 80
        }
      ],
      "active_at": "2016-08-29T09:12:33.001Z",
      "boot_time": {
        "min_boot_in_sec": 180,
        "max_boot_in_sec": 300
      }
    }
  ],
  "hourly_price": 1500,
  "cloud_cluster_id": "cluster-abc123",
  "status_details": "Cluster is provisioning",
  "cost_estimate": "$15.00",
  "active_at": "2023-11-07T05:31:56Z"
}
"""  # noqa: E501 (the docs' base64 script is one long line)


def _envelope(observed_at: str, endpoint: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"observed_at": observed_at, "endpoint": endpoint, "response": response}


def _jsonl(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def _pretty(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def render(seed: int = SEED) -> dict[str, str]:
    """The text of every generated file, keyed by its path relative to data/."""
    history = synthetic.fleet_history(seed)
    last_poll = history[-1]["observed_at"]
    types = synthetic.instance_types(seed)
    volumes, volume_types = synthetic.volume_history(history)
    return {
        "seed/cluster-info-example.json": SEED_CLUSTER_INFO,
        "sample/clusters.jsonl": _jsonl(
            _envelope(poll["observed_at"], "/clusters", poll["clusters"]) for poll in history
        ),
        "sample/instances.jsonl": _jsonl(
            _envelope(poll["observed_at"], "/instances", poll["instances"]) for poll in history
        ),
        "sample/instance_types.json": _pretty(_envelope(last_poll, "/instances/types", types)),
        "sample/volumes.jsonl": _jsonl(
            _envelope(poll["observed_at"], "/volumes", response)
            for poll, response in zip(history, volumes, strict=True)
        ),
        "sample/volume_types.json": _pretty(_envelope(last_poll, "/volumes/types", volume_types)),
    }


def write(out_dir: Path) -> list[Path]:
    """Write every file under out_dir (UTF-8, LF line ends) and return their paths."""
    written = []
    for relative, text in render().items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DATA_DIR,
                        help="directory to write seed/ and sample/ into (default: data/)")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
