// One test process for every suite: the first synthesis in a process loads CloudFormation's validation
// rules (about 15 s on a small machine); the suites share that, and the synthesized environments.
import './options';
import './data';
import './databases';
import './services';
import './access';
import './monitoring';
import './environments';
import './service-config';
import './image';
import './synth';
