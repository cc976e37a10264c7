// Typed objects for the four Diego kinds, on @kubernetes-models/base: `new DesiredLRP({ metadata, spec })`
// fills in apiVersion and kind, and validate() runs the same full validation as the admission webhook.
import { Model } from '@kubernetes-models/base';
import type { IObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1';
import { describeErrors, validateSpec } from '../webhooks/validate.ts';
import type { ActualLRPSpec, ActualLRPStatus } from './actual-lrp.ts';
import type { CellSpec, CellStatus } from './cell.ts';
import type { DesiredLRPSpec, DesiredLRPStatus } from './desired-lrp.ts';
import { API_VERSION, type KindInfo } from './kinds.ts';
import type { TaskSpec, TaskStatus } from './task.ts';

/** The shape of a Diego custom resource as stored by the apiserver. */
export interface DiegoObject<K extends KindInfo['kind'], Spec, Status> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: IObjectMeta;
  spec: Spec;
  status?: Status;
}

export type IDesiredLRP = DiegoObject<'DesiredLRP', DesiredLRPSpec, DesiredLRPStatus>;
export type IActualLRP = DiegoObject<'ActualLRP', ActualLRPSpec, ActualLRPStatus>;
export type ITask = DiegoObject<'Task', TaskSpec, TaskStatus>;
export type ICell = DiegoObject<'Cell', CellSpec, CellStatus>;

function modelOf<T extends DiegoObject<KindInfo['kind'], unknown, unknown>>(kind: T['kind']) {
  return class extends Model<T> {
    // `declare`: no class-field initializers, which would overwrite what Model's constructor copied in.
    declare metadata: T['metadata'];
    declare spec: T['spec'];
    declare status?: T['status'];
    readonly apiVersion = API_VERSION;
    readonly kind: T['kind'] = kind;

    override validate(): void {
      const errors = validateSpec(kind, this.spec);
      if (errors.length > 0)
        throw new Error(`${kind} ${this.metadata?.name ?? ''} is invalid: ${describeErrors(errors)}`);
    }
  };
}

export class DesiredLRP extends modelOf<IDesiredLRP>('DesiredLRP') {}
export class ActualLRP extends modelOf<IActualLRP>('ActualLRP') {}
export class Task extends modelOf<ITask>('Task') {}
export class Cell extends modelOf<ICell>('Cell') {}
