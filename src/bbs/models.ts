// Diego BBS's protobuf models (package `models`), generated from ./proto into ./gen by `npm run generate:proto`.
// Import message types and schemas from here; `bbsRegistry` resolves any of them by full name (e.g. "models.DesiredLRP").
import { createRegistry } from '@bufbuild/protobuf';
import { file_actions } from './gen/actions_pb.ts';
import { file_actual_lrp } from './gen/actual_lrp_pb.ts';
import { file_actual_lrp_requests } from './gen/actual_lrp_requests_pb.ts';
import { file_cached_dependency } from './gen/cached_dependency_pb.ts';
import { file_cells } from './gen/cells_pb.ts';
import { file_certificate_properties } from './gen/certificate_properties_pb.ts';
import { file_check_definition } from './gen/check_definition_pb.ts';
import { file_desired_lrp } from './gen/desired_lrp_pb.ts';
import { file_desired_lrp_requests } from './gen/desired_lrp_requests_pb.ts';
import { file_domains } from './gen/domains_pb.ts';
import { file_environment_variables } from './gen/environment_variables_pb.ts';
import { file_error } from './gen/error_pb.ts';
import { file_evacuation } from './gen/evacuation_pb.ts';
import { file_events } from './gen/events_pb.ts';
import { file_file } from './gen/file_pb.ts';
import { file_image_layer } from './gen/image_layer_pb.ts';
import { file_locket } from './gen/locket_pb.ts';
import { file_log_rate_limit } from './gen/log_rate_limit_pb.ts';
import { file_metric_tags } from './gen/metric_tags_pb.ts';
import { file_modification_tag } from './gen/modification_tag_pb.ts';
import { file_network } from './gen/network_pb.ts';
import { file_ping } from './gen/ping_pb.ts';
import { file_routes } from './gen/routes_pb.ts';
import { file_security_group } from './gen/security_group_pb.ts';
import { file_task } from './gen/task_pb.ts';
import { file_task_requests } from './gen/task_requests_pb.ts';
import { file_volume_mount } from './gen/volume_mount_pb.ts';

export * from './gen/actions_pb.ts';
export * from './gen/actual_lrp_pb.ts';
export * from './gen/actual_lrp_requests_pb.ts';
export * from './gen/cached_dependency_pb.ts';
export * from './gen/cells_pb.ts';
export * from './gen/certificate_properties_pb.ts';
export * from './gen/check_definition_pb.ts';
export * from './gen/desired_lrp_pb.ts';
export * from './gen/desired_lrp_requests_pb.ts';
export * from './gen/domains_pb.ts';
export * from './gen/environment_variables_pb.ts';
export * from './gen/error_pb.ts';
export * from './gen/evacuation_pb.ts';
export * from './gen/events_pb.ts';
export * from './gen/file_pb.ts';
export * from './gen/image_layer_pb.ts';
export * from './gen/locket_pb.ts';
export * from './gen/log_rate_limit_pb.ts';
export * from './gen/metric_tags_pb.ts';
export * from './gen/modification_tag_pb.ts';
export * from './gen/network_pb.ts';
export * from './gen/ping_pb.ts';
export * from './gen/routes_pb.ts';
export * from './gen/security_group_pb.ts';
export * from './gen/task_pb.ts';
export * from './gen/task_requests_pb.ts';
export * from './gen/volume_mount_pb.ts';

/** Every message and enum of the BBS models, by full protobuf name. */
export const bbsRegistry = createRegistry(
  file_actions,
  file_actual_lrp,
  file_actual_lrp_requests,
  file_cached_dependency,
  file_cells,
  file_certificate_properties,
  file_check_definition,
  file_desired_lrp,
  file_desired_lrp_requests,
  file_domains,
  file_environment_variables,
  file_error,
  file_evacuation,
  file_events,
  file_file,
  file_image_layer,
  file_locket,
  file_log_rate_limit,
  file_metric_tags,
  file_modification_tag,
  file_network,
  file_ping,
  file_routes,
  file_security_group,
  file_task,
  file_task_requests,
  file_volume_mount,
);
