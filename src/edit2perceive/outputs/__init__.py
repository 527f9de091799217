"""What users do with predictions: pictures and 16-bit files (:mod:`.visualize`), point clouds
(:mod:`.pointcloud`), metric depth from a few measurements (:mod:`.metric_depth`) and video
(:mod:`.video`). Builds on the pipeline's outputs; never imports training or evaluation."""
